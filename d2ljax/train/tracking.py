"""Experiment tracking (the course's "track your experiments"): TensorBoard event files written
while a run trains, and the table of the runs in a folder.

* :class:`TensorBoardLogger`: a :class:`~d2ljax.train.Callback` for :func:`~d2ljax.train.fit`
  that writes, after every epoch, each number of the epoch's history entry (``train_loss``,
  ``val_accuracy``, ``epoch_time``, ...) as a TensorBoard scalar of the same name at step
  ``epoch`` (from 1), and once per process the run's hyperparameters (the HParams dashboard's
  session, whose metrics are those scalars). The files are written by tensorboardX, without
  TensorFlow, into ``logdir`` (usually the run's workdir), so ``tensorboard --logdir runs``
  shows every run under ``runs/`` by its folder name. A resumed run appends a new event file;
  an epoch trained twice (interrupted after its scalars, before its checkpoint) has two points
  at its step, the later one of which :func:`read_scalars` keeps.
* :func:`read_scalars`: the scalars of a folder's event files, read back from the TFRecord
  files with the protocol buffers tensorboardX ships (each record's CRC checked).
* :func:`list_runs` / :func:`format_runs`: every run under a folder (a folder with the
  ``metrics.json`` that ``fit`` writes, and the ``config.json`` the experiment layer writes), with
  the config keys that differ between them, the final and best metrics and the training time
  (``d2ljax runs``); :func:`plot_runs` overlays their curves.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from d2ljax.train.loop import Callback

_WRITERS = itertools.count()

#: History keys that are not metrics.
_NOT_METRICS = ("epoch",)


def flat_config(node: Mapping, prefix: str = "") -> dict[str, Any]:
    """``{"optimizer.learning_rate": 0.1, ...}``: a nested config as dotted keys; lists and
    other non-scalar values as their JSON text, None as ``"None"``."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            if value:
                out.update(flat_config(value, path + "."))
            continue
        if isinstance(value, bool | int | float | str):
            out[path] = value
        elif value is None:
            out[path] = "None"
        else:
            out[path] = json.dumps(value)
    return out


class TensorBoardLogger(Callback):
    """Write each epoch's metrics (and the run's hyperparameters) as TensorBoard events.

    Args:
      logdir: the folder of the event files (created if needed), e.g. the run's workdir.
      hparams: ``{name: value}`` shown in the HParams dashboard (nested dicts are flattened to
        dotted keys, see :func:`flat_config`); None: no hparams session.
      flush_secs: how often tensorboardX flushes on its own (every epoch is flushed anyway).

    Usable without ``fit`` too: :meth:`write_epoch` and :meth:`write_hparams` (the tuning engine
    writes a trial's epochs as its objective reports them). :meth:`close` closes the file.
    """

    def __init__(
        self,
        logdir: str | os.PathLike,
        hparams: Mapping[str, Any] | None = None,
        flush_secs: int = 10,
    ):
        self.logdir = Path(logdir)
        self.hparams = flat_config(hparams) if hparams is not None else None
        self.flush_secs = flush_secs
        self._writer = None
        self._hparams_written = False

    @property
    def writer(self):
        if self._writer is None:
            from tensorboardX import SummaryWriter

            self.logdir.mkdir(parents=True, exist_ok=True)
            # tensorboardX names a file by the second and the host only, and opens it with
            # "wb": a second writer in the same second would truncate the first's file
            suffix = f".{os.getpid()}.{next(_WRITERS):04d}"
            self._writer = SummaryWriter(
                logdir=str(self.logdir), flush_secs=self.flush_secs, filename_suffix=suffix
            )
        return self._writer

    def write_epoch(self, step: int, logs: Mapping[str, Any]) -> None:
        """Every finite-or-not number of ``logs`` (but ``epoch``) as a scalar at ``step``."""
        for key, value in logs.items():
            if key in _NOT_METRICS or isinstance(value, bool):
                continue
            if isinstance(value, int | float):
                self.writer.add_scalar(key, float(value), int(step))
        self.writer.flush()

    def write_hparams(self, hparams: Mapping[str, Any], metrics: Sequence[str]) -> None:
        """The HParams dashboard's session for this run: ``hparams`` (flattened) and the names
        of the scalars that are its metrics."""
        from tensorboardX.summary import hparams as hparams_summary

        values = flat_config(hparams)
        exp, ssi, sei = hparams_summary(values, {m: 0.0 for m in metrics})
        for summary in (exp, ssi, sei):
            self.writer.file_writer.add_summary(summary)
        self.writer.flush()
        self._hparams_written = True

    def on_epoch_end(self, epoch, history, state) -> bool:
        logs = {k: v[-1] for k, v in history.items() if isinstance(v, list) and v}
        if self.hparams is not None and not self._hparams_written:
            metrics = [k for k, v in logs.items() if k not in _NOT_METRICS and _is_number(v)]
            self.write_hparams(self.hparams, metrics)
        self.write_epoch(epoch + 1, logs)
        return False

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _masked_crc(data: bytes) -> int:
    from tensorboardX.record_writer import masked_crc32c

    return int(masked_crc32c(data))


def _records(path: Path):
    """The payloads of a TFRecord file; a damaged or cut-off record ends the file (a file
    still being written ends in one)."""
    data = path.read_bytes()
    i = 0
    while i + 12 <= len(data):
        header = data[i : i + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", data[i + 8 : i + 12])
        end = i + 12 + length + 4
        if header_crc != _masked_crc(header) or end > len(data):
            return
        payload = data[i + 12 : i + 12 + length]
        (payload_crc,) = struct.unpack("<I", data[end - 4 : end])
        if payload_crc != _masked_crc(payload):
            return
        yield payload
        i = end


def event_files(logdir: str | os.PathLike) -> list[Path]:
    """The event files directly in ``logdir``, oldest first (tensorboardX names them by time)."""
    folder = Path(logdir)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.startswith("events.out.tfevents."))


def read_scalars(logdir: str | os.PathLike) -> dict[str, dict[int, float]]:
    """``{tag: {step: value}}`` of the scalars in ``logdir``'s event files (a step written twice:
    the later value)."""
    from tensorboardX.proto.event_pb2 import Event

    out: dict[str, dict[int, float]] = {}
    for path in event_files(logdir):
        for payload in _records(path):
            event = Event.FromString(payload)
            if not event.HasField("summary"):
                continue
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    out.setdefault(value.tag, {})[int(event.step)] = float(value.simple_value)
    return out


def read_hparams(logdir: str | os.PathLike) -> dict[str, Any]:
    """The hyperparameters of the (last) HParams session in ``logdir``'s event files."""
    from tensorboardX.proto.event_pb2 import Event
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData

    found: dict[str, Any] = {}
    for path in event_files(logdir):
        for payload in _records(path):
            event = Event.FromString(payload)
            for value in event.summary.value if event.HasField("summary") else ():
                if value.tag != "_hparams_/session_start_info":
                    continue
                data = HParamsPluginData.FromString(value.metadata.plugin_data.content)
                found = {}
                for name, v in data.session_start_info.hparams.items():
                    kind = v.WhichOneof("kind")
                    found[name] = getattr(v, kind) if kind else None
    return found


# --------------------------------------------------------------------------- the runs table


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _best(key: str, values: list) -> float | None:
    nums = [v for v in values if _is_number(v) and math.isfinite(v)]
    if not nums:
        return None
    return max(nums) if key.endswith("accuracy") else min(nums)


def list_runs(root: str | os.PathLike) -> list[dict[str, Any]]:
    """One dict per run under ``root`` (``root`` itself included), sorted by folder:

    ``run`` (the folder relative to ``root``; ``"."`` for root itself), ``path``, ``epochs``,
    ``seconds`` (the sum of ``epoch_time``), ``final`` (``{metric: last value}``), ``best``
    (``{metric: best value}``: the highest accuracy, the lowest loss or error), ``config`` (the
    flattened ``config.json``, empty without one) and ``history``. A folder is a run when it
    holds a readable ``metrics.json`` with an ``epoch`` list."""
    root = Path(root)
    runs = []
    for metrics in sorted(root.rglob("metrics.json")):
        history = _read_json(metrics)
        if not isinstance(history, dict) or not isinstance(history.get("epoch"), list):
            continue
        folder = metrics.parent
        cfg = _read_json(folder / "config.json")
        final = {
            k: v[-1]
            for k, v in history.items()
            if k not in (*_NOT_METRICS, "epoch_time") and isinstance(v, list) and v
            and _is_number(v[-1])
        }
        best = {k: _best(k, history[k]) for k in final}
        times = [t for t in history.get("epoch_time", []) if _is_number(t)]
        runs.append(
            {
                "run": str(folder.relative_to(root)),
                "path": str(folder),
                "epochs": len(history["epoch"]),
                "seconds": float(sum(times)),
                "final": final,
                "best": best,
                "config": flat_config(cfg) if isinstance(cfg, dict) else {},
                "history": history,
            }
        )
    return runs


#: Config keys never shown as a difference between runs (the epochs have their own column).
_IGNORED_KEYS = ("description", "epochs")


def differing_keys(runs: Sequence[Mapping]) -> list[str]:
    """The config keys whose values are not the same in every run (a key a run lacks counts as
    a difference), sorted."""
    configs = [r["config"] for r in runs if r["config"]]
    if len(configs) < 2:
        return []
    keys = sorted(set().union(*configs))
    return [
        k
        for k in keys
        if k not in _IGNORED_KEYS and len({json.dumps(c.get(k)) for c in configs}) > 1
    ]


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e-3 or abs(v) >= 1e4 else f"{v:.4f}".rstrip("0").rstrip(".")
    return str(v)


def format_runs(runs: Sequence[Mapping], metrics: Sequence[str] | None = None) -> str:
    """The runs as a text table: run, epochs, time, the differing config keys, then the final
    value of each metric (default: every metric any run has, validation ones first) and the
    best validation accuracy / loss."""
    if not runs:
        return ""
    if metrics is None:
        names = sorted({k for r in runs for k in r["final"]})
        metrics = [k for k in names if k.startswith("val_")] + [
            k for k in names if not k.startswith("val_")
        ]
    keys = differing_keys(runs)
    header = ["run", "epochs", "time_s", *keys, *metrics]
    bests = [m for m in ("val_accuracy", "val_loss") if m in metrics]
    header += [f"best_{m}" for m in bests]
    rows = [header]
    for r in runs:
        row = [r["run"], str(r["epochs"]), f"{r['seconds']:.2f}"]
        row += [_cell(r["config"].get(k)) for k in keys]
        row += [_cell(r["final"].get(m)) for m in metrics]
        row += [_cell(r["best"].get(m)) for m in bests]
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                  enumerate(zip(row, widths, strict=True))).rstrip()
        for row in rows
    )


def plot_runs(runs: Sequence[Mapping], path: str | os.PathLike, metric: str = "val_accuracy"):
    """A PNG at ``path`` with each run's ``metric`` against its epochs, one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in runs:
        ys = r["history"].get(metric)
        if ys:
            ax.plot(r["history"]["epoch"][: len(ys)], ys, marker=".", label=r["run"])
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    if len(runs) <= 12:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
