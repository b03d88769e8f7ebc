"""xai/dataset/runner.py: explaining on two devices (tf.distribute, in another process) writes the file
one device writes."""
import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.xai.dataset.conftest import ENV, same_file


@pytest.mark.slow                      # child processes
def test_two_logical_devices_write_the_file_one_device_writes(tmp_path, saved):
    script = f"""
import json, keras, numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from xai.dataset import explain_dataset
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    model = keras.models.load_model({str(saved / 'model.keras')!r})
x = np.load({str(saved / 'x.npy')!r})
for name, s in (("two", strategy), ("one", None)):
    explain_dataset(model, x, "integrated_gradients", {str(tmp_path)!r} + f"/{{name}}.h5", batch_size=6,
                    strategy=s, progress=False, steps=8)
import xai.dataset.runner
print(json.dumps(xai.dataset.runner.devices(strategy)))
"""
    run = subprocess.run([sys.executable, "-c", script], env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert len(json.loads(run.stdout.strip().splitlines()[-1])) == 2
    same_file(tmp_path / "two.h5", tmp_path / "one.h5")
