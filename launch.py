"""The one entry point of ganjax.

    python launch.py --config=configs/cgan_mnist.py [--workdir=DIR] [--config.a.b=value ...]

`--config` names an experiment file (`configs/*.py`, `get_config()`; `FILE:arg` passes `arg`,
e.g. `configs/cgan_mnist.py:tiny`). Any key can be overridden with `--config.key=value`;
unknown keys, wrong types and bad values are a one-line error before anything runs. The
workdir defaults to `workdirs/<config.name>`; re-running the same command resumes there.
`config.job` picks what runs (training by default).
"""

from __future__ import annotations

import os
import signal
import sys


def _interrupted(signum, frame) -> None:
    """Ctrl-C outside the training loop (which saves a checkpoint first): stop at once, quietly."""
    del signum, frame
    os.write(2, b"ganjax: interrupted; the complete checkpoints in the workdir are kept.\n")
    os._exit(128 + signal.SIGINT)


if __name__ == "__main__":  # before the slow imports, so that no Ctrl-C becomes a traceback
    signal.signal(signal.SIGINT, _interrupted)

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file (configs/*.py).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (default: workdirs/<config.name>).")


def _fail(message: str) -> None:
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    if any(line.startswith("Traceback") for line in lines):  # keep the cause, drop the frames
        lines = [lines[0].split("Traceback")[0], lines[-1]]
    message = " ".join(lines)
    print(f"ganjax: error: {message}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    # Everything of ours is flushed and closed by now; a library's worker thread (e.g. a failed
    # asynchronous save on a full disk) must neither keep the process alive nor print at exit.
    os._exit(2)


def _quiet_library_logs() -> None:
    """Keeps INFO lines from ganjax and clu's writers; libraries log only warnings and up."""
    import logging as pylogging

    keep = ("/ganjax/", "/clu/", "launch.py")

    class Quiet(pylogging.Filter):
        def filter(self, record):
            ours = any(k in record.pathname for k in keep)
            if not ours and record.exc_info:  # a library's error: its line, not its traceback
                record.exc_info, record.exc_text = None, None
            return record.levelno >= pylogging.WARNING or ours

    logging.get_absl_handler().addFilter(Quiet())


def _quiet_closed_loop_callbacks() -> None:
    """After a failed asynchronous checkpoint save (e.g. a full disk), tensorstore's pending
    reads and writes complete into orbax's closed event loop, and Python reports each
    `RuntimeError: Event loop is closed` through `sys.unraisablehook`; the save's own error is
    reported as one line. Those echoes are dropped; every other report prints as usual."""
    default = sys.unraisablehook

    def hook(unraisable):
        if isinstance(unraisable.exc_value, RuntimeError) and str(unraisable.exc_value) == "Event loop is closed":
            return
        default(unraisable)

    sys.unraisablehook = hook


def main(argv, config):
    if len(argv) > 1:
        _fail(f"unexpected arguments {argv[1:]}; use --config.key=value for overrides.")
    _quiet_library_logs()
    _quiet_closed_loop_callbacks()
    # Multi-host initialisation must precede every other JAX call.
    from ganjax import config as config_lib, errors, jobs, runs, sharding

    sharding.initialize_distributed(config.get("distributed") or None)
    workdir = os.path.abspath(_WORKDIR.value or os.path.join("workdirs", config.name))
    try:
        config_lib.validate(config)
        runs.check_workdir(workdir)
        # TensorFlow (tf.data) must not take the accelerators from JAX.
        import tensorflow as tf

        tf.config.set_visible_devices([], "GPU")
        jobs.get(config.job)(config, workdir)
    except errors.UserError as e:  # anything a user can fix: one line, exit status 2
        _fail(str(e))
    except OSError as e:  # the workdir cannot be written (e.g. under /proc, a full disk)
        if not str(e.filename or "").startswith(workdir):
            raise
        _fail(f"cannot write {e.filename} ({e.strerror}): choose a writable --workdir.")


def run() -> None:
    # absl and config_flags report flag errors (unknown key, wrong type, missing file) as
    # tracebacks or "FATAL Flags parsing error"; turn each into the same one-line error.
    try:
        argv = flags.FLAGS(sys.argv)
        config = _CONFIG.value
        if config is not None:
            config.get("name")  # config_flags loads the file and applies overrides lazily
    except (flags.Error, OSError) as e:
        _fail(str(e))
    except (AttributeError, KeyError) as e:  # an override of a key that does not exist
        key = str(e.args[0] if e.args else e).strip("'\"")
        _fail(f"unknown config key {key!r} in a --config.* override; the keys, their types and "
              "defaults are listed beside their code (README: Configs).")
    except (TypeError, ValueError) as e:  # a value of the wrong type, or a bad variant
        _fail(f"bad --config: {e}")
    except SyntaxError as e:  # the config file itself does not parse
        _fail(f"the config file {e.filename} does not parse (line {e.lineno}: {e.msg}); fix the file.")
    except Exception as e:  # noqa: BLE001  (anything else raised while loading the config file)
        _fail(f"loading --config failed: {type(e).__name__}: {e}")
    if config is None:
        _fail("--config is required, e.g. --config=configs/cgan_mnist.py")
    app.run(lambda a: main(a, config), argv=argv, flags_parser=lambda a: a)


if __name__ == "__main__":
    run()
