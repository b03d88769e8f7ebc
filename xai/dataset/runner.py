"""Running a method over the batches of :func:`xai.dataset.explain_dataset`: each batch split over
the devices of a ``tf.distribute`` strategy (one thread a device, under ``tf.device``), the data
read ahead on one thread and the finished blocks written behind on another, so that reading,
explaining and storing overlap.

Axis key: N examples, B examples in one batch, R replicas (devices), K classes.
"""
from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import xai.dataset.store as store
from xai.dataset.sources import block_digest

__all__ = ["devices", "worker_of", "Explainer", "nothing", "prefetch", "with_digests", "run_blocks", "hand_over"]


def devices(strategy) -> list:
    if strategy is None:
        return [None]
    devices = list(strategy.extended.worker_devices)
    return devices or [None]


def worker_of(strategy) -> tuple[int, int]:
    """(task id, number of workers) of a multi-worker strategy; (0, 1) otherwise."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return 0, 1
    n = len(resolver.cluster_spec().as_dict().get("worker", [])) + len(resolver.cluster_spec().as_dict().get("chief", []))
    task = resolver.task_id + (1 if resolver.task_type == "worker" and "chief" in resolver.cluster_spec().as_dict()
                               else 0)
    return int(task), max(1, int(n))


class Explainer:
    """Probabilities, the class explained and the maps for one batch, split over the devices."""

    def __init__(self, model, function, options, class_spec, devices, method_batch_size):
        self.model, self.function, self.options = model, function, dict(options)
        if method_batch_size is not None:
            self.options["batch_size"] = method_batch_size
        self.class_spec, self.devices = class_spec, devices
        self.pool = ThreadPoolExecutor(len(devices)) if len(devices) > 1 else None
        self.warm = False

    def _one(self, device, xb, yb, pos):
        import tensorflow as tf

        from xai.core import check_class_range, predict_scores
        with tf.device(device) if device else nothing():
            probs = predict_scores(self.model, xb, score="probability", batch_size=max(1, len(xb)))
            if isinstance(self.class_spec, str):
                classes = probs.argmax(1) if self.class_spec == "predicted" else yb
            elif self.class_spec.ndim == 0:
                classes = np.full(len(xb), int(self.class_spec))
            else:
                if pos.max() >= len(self.class_spec):
                    raise ValueError(f"class_index has {len(self.class_spec)} entries; example {int(pos.max())} has none")
                classes = self.class_spec[pos]
            classes = np.asarray(classes, np.int32)
            what = "labels" if isinstance(self.class_spec, str) and self.class_spec == "label" else "class_index"
            check_class_range(classes, probs.shape[1], what=what, positions=pos)
            maps = np.asarray(self.function(self.model, xb, classes, **self.options))
        if maps.ndim < 2 or len(maps) != len(xb):
            raise ValueError(f"the method returned maps of shape {maps.shape} for {len(xb)} examples; expected "
                             f"({len(xb)}, ...), one map an example")
        if maps.dtype.kind not in "fiub":
            raise ValueError(f"the method returned maps of dtype {maps.dtype}; expected numbers")
        if not np.isfinite(maps).all():
            bad = pos[~np.isfinite(maps.reshape(len(maps), -1)).all(1)][:5].tolist()
            raise ValueError(f"the method returned non-finite maps (NaN or inf) for example(s) {bad}")
        return maps.astype(np.float32, copy=False), classes, probs

    def __call__(self, xb, yb, pos):
        if self.pool is None or len(xb) < len(self.devices):
            return self._one(self.devices[0], xb, yb, pos)
        cuts = np.array_split(np.arange(len(xb)), len(self.devices))        # one contiguous slice a device
        args = [(d, xb[c], None if yb is None else yb[c], pos[c]) for d, c in zip(self.devices, cuts)]
        if not self.warm:                                                    # trace each device's steps one at a time
            results = [self._one(*a) for a in args]
            self.warm = True
        else:
            results = list(self.pool.map(lambda a: self._one(*a), args))
        return tuple(np.concatenate([r[i] for r in results]) for i in range(3))

    def close(self):
        if self.pool is not None:
            self.pool.shutdown()


class nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def prefetch(iterator, depth: int = 2):
    """Runs ``iterator`` in a thread, ``depth`` items ahead (reading and decoding overlap the work)."""
    q: queue.Queue = queue.Queue(depth)
    done = object()
    stop = threading.Event()

    def put(item) -> bool:
        return _put_while(q, item, lambda: not stop.is_set())

    def run():
        try:
            for item in iterator:
                if not put(item):
                    return
            put(done)
        except BaseException as err:                                          # handed to the consumer
            put(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def with_digests(batches):
    """Each batch with the digest of its inputs (computed on the reading thread)."""
    for pos, xb, yb in batches:
        yield pos, xb, yb, block_digest(xb)


def run_blocks(first, batches, source, explainer, fields, out, parts_dir, block, done_blocks, compression, progress):
    """Explain every batch (the first one already done) while a thread writes the finished ones."""
    import itertools

    from tqdm.auto import tqdm
    writes: queue.Queue = queue.Queue(2)
    failure = []

    def writer():
        while True:
            item = writes.get()
            if item is None:
                return
            k, rows, digest = item
            try:
                store.write_part(os.path.join(parts_dir, store.part_name(k)), fields, rows, block, compression,
                                 digest)
            except BaseException as err:                                      # e.g. the disk filled up
                failure.append(err)
                return

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        with tqdm(total=source.n, initial=done_blocks * block, unit="ex", disable=not progress, smoothing=0.1,
                  desc=f"explaining -> {os.path.basename(out)}") as bar:
            rest = ((batch, explainer(batch[1], batch[2], batch[0])) for batch in batches)
            for k, ((pos, xb, yb, digest), (maps, classes, probs)) in enumerate(itertools.chain([first], rest),
                                                                              done_blocks):
                if maps.shape[1:] != fields["maps"][0]:
                    raise ValueError(f"the method returned maps of shape {maps.shape[1:]} for examples {pos[:1]}..., "
                                     f"after {fields['maps'][0]} for the first batch")
                rows = {"maps": maps, "class_index": classes, "probabilities": probs, "index": pos}
                if "label" in fields:
                    rows["label"] = yb
                if not hand_over(writes, (k, rows, digest), thread):
                    break                                                       # the writer stopped: see below
                bar.update(len(xb))
    finally:
        hand_over(writes, None, thread)
        thread.join()
    if failure:
        raise OSError(f"writing {out!r} failed ({failure[0]}); the completed batches are kept: fix the cause and "
                      "call again to resume") from failure[0]


def _put_while(q: queue.Queue, item, going) -> bool:
    """Put ``item`` on ``q``, waiting while ``going()``; False when it stops first (never blocks for good)."""
    while going():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def hand_over(q: queue.Queue, item, thread) -> bool:
    """Hand ``item`` to the writer; False when it has stopped."""
    return _put_while(q, item, thread.is_alive)
