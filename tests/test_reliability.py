"""Faults a hostile user (or a bad day) brings, injected on tiny configs: NaN learning rates,
damaged checkpoints, a full disk, two runs on one workdir, kill -9, bad launch inputs and a
second Ctrl-C. Each must end in a one-line error or a warning, and lose nothing complete."""

import contextlib
import errno
import glob
import json
import os
import signal
import subprocess
import sys
import time

import jax
import pytest

from ganjax import runs, train
from ganjax.checkpoint import Checkpointer, DiskFullError, NonFiniteState, non_finite_leaves
from ganjax.errors import CheckpointError, TrainingError
from tests.helpers import assert_trees_equal, launch, load_config, start_launch, wait_for_rows


@contextlib.contextmanager
def mounted_tmpfs(path, options):
    """A tmpfs mounted at `path` with mount `options` for the test (skips where the test
    cannot mount one, e.g. without root); unmounted afterwards."""
    path.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here; the simulated variant covers the code path")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], capture_output=True)


def tiny(**train_keys):
    config = load_config(None, "dcgan_mnist")
    config.optim.schedule = "constant"
    for key, value in train_keys.items():
        config.train[key] = value
    return config


def restore_step(workdir, config):
    """The step of the state a resume of `workdir` would start from."""
    from ganjax import gans
    from ganjax.data.core import DataInfo

    gan = gans.create(config, DataInfo("mnist_offline", (28, 28, 1), 10, tuple("0123456789"), 4500))
    with Checkpointer(os.path.join(workdir, "checkpoints"), 3) as c:
        state = c.restore(gan.init_state(jax.random.PRNGKey(0)))
    return int(state.step), state


# --------------------------------------------------------------------------------------------
# 1. NaN / inf.
# --------------------------------------------------------------------------------------------


def test_a_nan_state_is_never_checkpointed_and_the_advice_works(tmp_path):
    workdir = str(tmp_path / "run")
    config = tiny(num_steps=12, log_every=4, checkpoint_every=1)
    config.optim.d_lr = config.optim.g_lr = 1e12
    with pytest.raises(NonFiniteState, match=r"Non-finite values in the state .* at step 1\..*last good checkpoint is none"):
        train.train_and_evaluate(config, workdir)
    assert os.listdir(os.path.join(workdir, "checkpoints")) == []  # nothing non-finite, no tmp dir
    # The advice as written: lower the learning rates and re-run.
    config.optim.d_lr = config.optim.g_lr = 2e-4
    assert int(train.train_and_evaluate(config, workdir).step) == 12

    workdir = str(tmp_path / "run2")
    config = tiny(num_steps=12, log_every=1, checkpoint_every=1)
    config.optim.d_lr = config.optim.g_lr = 3e8
    with pytest.raises(TrainingError, match="Non-finite") as error:
        train.train_and_evaluate(config, workdir)
    named = int(str(error.value).split("last good checkpoint is step ")[1].split()[0])
    saved = sorted(os.listdir(os.path.join(workdir, "checkpoints")))
    assert str(named) == saved[-1] and not any("tmp" in s for s in saved)
    step, state = restore_step(workdir, config)
    assert step == named and non_finite_leaves(jax.device_get(state)) == []
    # Resuming with lower learning rates is accepted (not refused as another config).
    config.optim.d_lr = config.optim.g_lr = 1e-4
    try:
        train.train_and_evaluate(config, workdir)
    except NonFiniteState as e:  # the named state had already diverged: the message says what then
        assert "move the later step directories" in str(e)


# --------------------------------------------------------------------------------------------
# 2. Damaged checkpoints.
# --------------------------------------------------------------------------------------------


def _data_files(workdir, step):
    files = [p for p in glob.glob(os.path.join(workdir, "checkpoints", str(step), "state", "**", "*"), recursive=True)
             if os.path.isfile(p) and os.sep + "d" + os.sep in p]
    return sorted(files, key=os.path.getsize, reverse=True)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """4 steps of dcgan_mnist:tiny, checkpoints 2, 3, 4 (copied per test)."""
    workdir = str(tmp_path_factory.mktemp("trained") / "run")
    config = tiny(num_steps=4, checkpoint_every=1)
    state = train.train_and_evaluate(config, workdir)
    return workdir, config, jax.device_get(state)


def _copy(trained_run, tmp_path):
    import shutil

    workdir = str(tmp_path / "run")
    shutil.copytree(trained_run[0], workdir)
    return workdir


def test_damaged_checkpoints_fall_back_to_the_newest_readable_one(trained_run, tmp_path, caplog):
    workdir, config = _copy(trained_run, tmp_path), trained_run[1]
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["2", "3", "4"]
    largest = _data_files(workdir, 4)[0]
    with open(largest, "r+b") as f:  # truncated
        f.truncate(os.path.getsize(largest) // 2)
    os.remove(_data_files(workdir, 3)[0])  # a file deleted
    # An empty step directory (a partial copy) is skipped, not taken as the latest.
    os.makedirs(os.path.join(workdir, "checkpoints", "9"))
    with Checkpointer(os.path.join(workdir, "checkpoints"), 3, read_only=True) as c:
        assert c.latest_step() == 4 and 9 not in c.all_steps()
    assert "Skipping step directories [9]" in caplog.text
    step, _ = restore_step(workdir, config)
    assert step == 2
    assert "Checkpoint 4" in caplog.text and "Checkpoint 3" in caplog.text and "damaged" in caplog.text
    # The damaged and incomplete directories are set aside, not deleted.
    assert sorted(d.split(".")[0] for d in os.listdir(os.path.join(workdir, "damaged_checkpoints"))) == ["3", "4", "9"]
    # Training resumes from step 2 and finishes the run.
    config = config.copy_and_resolve_references()
    config.train.num_steps = 5
    assert int(train.train_and_evaluate(config, workdir).step) == 5
    # When nothing is readable, the error says damaged, not "another model".
    for s in sorted(os.listdir(os.path.join(workdir, "checkpoints"))):
        for p in _data_files(workdir, s)[:1]:
            os.remove(p)
    with pytest.raises(CheckpointError, match="Every checkpoint tried .* is damaged"):
        restore_step(workdir, config)


def test_flipped_bytes_are_detected_by_the_digest(trained_run, tmp_path, caplog):
    workdir, config, final = _copy(trained_run, tmp_path), trained_run[1], trained_run[2]
    step, state = restore_step(workdir, config)
    assert step == 4
    assert_trees_equal(jax.tree.leaves(jax.device_get(state)), jax.tree.leaves(final))
    target = _data_files(workdir, 4)[0]
    data = bytearray(open(target, "rb").read())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    open(target, "wb").write(bytes(data))
    step, _ = restore_step(workdir, config)
    assert step == 3 and "Checkpoint 4" in caplog.text


def test_a_checkpoint_of_another_model_keeps_its_own_message(trained_run, tmp_path):
    from ganjax import gans
    from ganjax.data.core import DataInfo

    config = trained_run[1].copy_and_resolve_references()
    config.model.g_width = 16
    gan = gans.create(config, DataInfo("mnist_offline", (28, 28, 1), 10, tuple("0123456789"), 4500))
    with Checkpointer(os.path.join(trained_run[0], "checkpoints"), 3, read_only=True) as c:
        with pytest.raises(CheckpointError, match="does not fit this config .*other shapes"):
            c.restore(gan.init_state(jax.random.PRNGKey(0)))


def test_a_checkpoint_arranged_otherwise_is_a_mismatch_not_damage(trained_run, caplog):
    """The same shapes in another tree (D's optimizer chained with WGAN weight clipping, whose
    state slot holds no array): one error saying the config differs; nothing called damaged or
    set aside."""
    from ganjax import gans
    from ganjax.data.core import DataInfo

    config = trained_run[1].copy_and_resolve_references()
    config.gan.weight_clip = 0.01
    gan = gans.create(config, DataInfo("mnist_offline", (28, 28, 1), 10, tuple("0123456789"), 4500))
    directory = os.path.join(trained_run[0], "checkpoints")
    before = sorted(os.listdir(directory))
    with Checkpointer(directory, 3, read_only=True) as c:
        with pytest.raises(CheckpointError, match="does not fit this config .*arranged otherwise"):
            c.restore(gan.init_state(jax.random.PRNGKey(0)))
    assert "damaged" not in caplog.text and sorted(os.listdir(directory)) == before


# --------------------------------------------------------------------------------------------
# 3. Full disk.
# --------------------------------------------------------------------------------------------


def test_a_full_disk_is_one_error_and_keeps_the_earlier_checkpoints(tmp_path, monkeypatch):
    """Simulated: the third save fails with ENOSPC (orbax's own error on a real full disk
    reads 'No space left on device [os_error_code=28]')."""
    import orbax.checkpoint as ocp

    real_save, calls = ocp.CheckpointManager.save, []

    def save(self, step, *args, **kwargs):
        calls.append(step)
        if len(calls) == 3:
            raise ValueError("RESOURCE_EXHAUSTED: Failed to write 224290 bytes: No space left on device [os_error_code='28']")
        return real_save(self, step, *args, **kwargs)

    monkeypatch.setattr(ocp.CheckpointManager, "save", save)
    workdir = str(tmp_path / "run")
    with pytest.raises(DiskFullError, match=r"No space left on the disk of .*checkpoints while writing checkpoint 3: the last complete checkpoint is step 2"):
        train.train_and_evaluate(tiny(num_steps=6, checkpoint_every=1), workdir)
    monkeypatch.setattr(ocp.CheckpointManager, "save", real_save)
    assert restore_step(workdir, tiny())[0] == 2
    assert int(train.train_and_evaluate(tiny(num_steps=6, checkpoint_every=1), workdir).step) == 6
    assert isinstance(OSError(errno.ENOSPC, "x"), OSError)


def test_a_real_full_disk_exits_promptly_with_one_line(repo_root, tmp_path):
    """On a 4 MiB tmpfs, where the test may mount one (root on Linux): checkpoints of ~1.2 MB
    fill it after three; the fourth save is refused with one line, the three stay, and the run
    resumes once there is space."""
    with mounted_tmpfs(tmp_path / "tiny_fs", "size=4m") as mount:
        args = ["--config=configs/dcgan_mnist.py:tiny", f"--workdir={mount / 'run'}",
                "--config.train.checkpoint_every=1", "--config.train.keep_checkpoints=100",
                "--config.model.g_width=32", "--config.model.d_width=32"]
        start = time.time()
        result = launch(repo_root, *args, "--config.train.num_steps=40")
        assert time.time() - start < 200
        errors = [l for l in result.stderr.splitlines() if l.startswith("ganjax: error:")]
        assert result.returncode == 2 and len(errors) == 1, result.stderr[-2000:]
        assert "No space left on the disk" in errors[0] and "Traceback" not in result.stderr
        complete = sorted(int(s) for s in os.listdir(mount / "run" / "checkpoints") if s.isdigit())
        assert complete and f"the last complete checkpoint is step {complete[-1]}" in errors[0]
        # Space freed: the same command resumes from that checkpoint.
        subprocess.run(["mount", "-o", "remount,size=32m", str(mount)], check=True)
        result = launch(repo_root, *args, f"--config.train.num_steps={complete[-1] + 2}")
        assert result.returncode == 0, result.stderr[-2000:]
        assert f"resuming at step {complete[-1]}" in result.stderr


# --------------------------------------------------------------------------------------------
# 4. One run per workdir.
# --------------------------------------------------------------------------------------------


def test_a_second_run_on_a_workdir_is_refused(repo_root, tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from ganjax import runs; "
         f"lock = runs.WorkdirLock({str(workdir)!r}).__enter__(); print('locked', flush=True); time.sleep(600)"],
        cwd=repo_root, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = launch(repo_root, "--config=configs/dcgan_mnist.py:tiny", f"--workdir={workdir}")
        errors = [l for l in result.stderr.splitlines() if l.startswith("ganjax: error:")]
        assert result.returncode == 2 and len(errors) == 1
        assert f"is in use by process {holder.pid}" in errors[0]
        assert not (workdir / "checkpoints").exists() and not (workdir / "metrics.jsonl").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # A killed holder leaves no stuck lock.
    with runs.WorkdirLock(str(workdir)):
        pass


# --------------------------------------------------------------------------------------------
# 5. Metrics survive kill -9; a resumed run's files read as one run.
# --------------------------------------------------------------------------------------------


def _tensorboard_steps(logdir, tag):
    import tensorflow as tf
    from tensorboard.compat.proto.event_pb2 import Event

    steps = []
    for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents*"))):
        for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
            event = Event.FromString(record)
            steps += [event.step for v in event.summary.value if v.tag == tag]
    return steps


def test_metrics_survive_kill_9_and_resume_without_duplicates(repo_root, tmp_path):
    workdir = tmp_path / "run"
    proc = start_launch(
        repo_root, "--config=configs/dcgan_mnist.py:tiny", f"--workdir={workdir}",
        "--config.train.num_steps=100000", "--config.train.log_every=1",
        "--config.train.checkpoint_every=5", "--config.train.sample_every=100000",
        output=subprocess.DEVNULL,
    )
    metrics = workdir / "metrics.jsonl"
    wait_for_rows(metrics, 12)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    logged = [json.loads(l)["step"] for l in metrics.read_text().splitlines() if l.strip().endswith("}")]
    assert len(logged) >= 12 and logged == list(range(1, len(logged) + 1))  # every logged row kept
    result = launch(repo_root, "--config=configs/dcgan_mnist.py:tiny", f"--workdir={workdir}",
                    "--config.train.num_steps=20", "--config.train.log_every=1",
                    "--config.train.checkpoint_every=5", "--config.train.sample_every=100000")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [json.loads(l) for l in metrics.read_text().splitlines()]
    train_steps = [r["step"] for r in rows if "train/d_loss" in r]
    assert train_steps == list(range(1, 21))  # one row per step, as one uninterrupted run
    tb = _tensorboard_steps(str(workdir / "tensorboard"), "train/d_loss")
    assert sorted(tb) == list(range(1, 21))


# --------------------------------------------------------------------------------------------
# 6. One-line errors for bad launch inputs; nothing created.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--config.data.batch_size=6"], "batch size 6 does not divide over 4 devices"),
        (["--config.mesh.num_devices=64"], "num_devices=64 but only 4 devices"),
        (["--config.gan.name=bogus"], "unknown config.gan.name 'bogus'"),
        (["--config.optim.optimizer=sgdx"], "unknown config.optim.optimizer 'sgdx'"),
        (["--config.optim.schedule=cosinex"], "unknown config.optim.schedule 'cosinex'"),
        (["--config.optim.grad_clip_norm=-1.0"], "config.optim.grad_clip_norm must be >= 0"),
        (["WORKDIR=AFILE"], "is a file, not a directory"),
        (["WORKDIR=AFILE/sub"], "which is a file"),
        (["WORKDIR=/proc/ganjax_test_run"], "cannot write in --workdir /proc/ganjax_test_run"),
        (["CONFIG=SYNTAX"], "does not parse (line 1"),
    ],
)
def test_bad_launch_inputs_are_one_line_errors_that_create_nothing(repo_root, tmp_path, args, needle):
    afile = tmp_path / "afile"
    afile.write_text("x")
    (tmp_path / "syntax.py").write_text("def get_config(:\n")
    workdir, config, extra = tmp_path / "new_run", "configs/dcgan_mnist.py:tiny", []
    for a in args:
        if a.startswith("WORKDIR="):
            workdir = a.split("=", 1)[1].replace("AFILE", str(afile))
        elif a.startswith("CONFIG="):
            config = str(tmp_path / "syntax.py")
        else:
            extra.append(a)
    result = launch(repo_root, f"--config={config}", f"--workdir={workdir}", *extra)
    errors = [l for l in result.stderr.splitlines() if l.startswith("ganjax: error:")]
    assert result.returncode == 2 and len(errors) == 1 and needle in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "new_run").exists() and not os.path.exists("/proc/ganjax_test_run")


def test_num_steps_below_the_checkpoint_is_an_error(trained_run, tmp_path):
    workdir = _copy(trained_run, tmp_path)
    config = trained_run[1].copy_and_resolve_references()
    config.train.num_steps = 2
    with pytest.raises(TrainingError, match=r"checkpoint of step 4, past train.num_steps=2"):
        train.train_and_evaluate(config, workdir)


# --------------------------------------------------------------------------------------------
# 8. A second Ctrl-C stops at once.
# --------------------------------------------------------------------------------------------


def test_a_second_ctrl_c_stops_at_once_without_a_traceback(repo_root, tmp_path):
    """Steps of about a second (a wide model, batch 256): the first SIGINT asks for a save at
    the end of the step, the second ends the process at once."""
    workdir = tmp_path / "run"
    args = [f"--workdir={workdir}", "--config.train.log_every=1", "--config.train.checkpoint_every=1",
            "--config.train.sample_every=100000", "--config.model.g_width=96", "--config.model.d_width=96",
            "--config.data.batch_size=256"]
    proc = start_launch(repo_root, "--config=configs/dcgan_mnist.py:tiny", "--config.train.num_steps=100000", *args)
    wait_for_rows(workdir / "metrics.jsonl", 2)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    start = time.time()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    # At once: a missed second signal costs the whole shutdown (10 s on a 2-core CI machine).
    assert time.time() - start < 3.0
    # 130: stopped by the watcher mid-step, with its one line; -SIGINT: the clean stop was already
    # done and the signal's default action ended the shutdown. Either way at once, no traceback.
    assert proc.returncode in (130, -signal.SIGINT) and "Traceback" not in out, out[-3000:]
    assert "Received SIGINT" in out
    assert proc.returncode == -signal.SIGINT or "stopped at once by a second signal" in out
    # Resuming removes the temporary directory of an interrupted save and goes on.
    done = max(int(d) for d in os.listdir(workdir / "checkpoints") if d.isdigit())
    result = launch(repo_root, "--config=configs/dcgan_mnist.py:tiny", f"--config.train.num_steps={done + 1}", *args)
    assert result.returncode == 0, result.stderr[-2000:]
    assert not [d for d in os.listdir(workdir / "checkpoints") if "tmp" in d]


_SECOND_SIGNAL_DURING_EXIT = """
import os, signal, sys, time
from ganjax import train

where = sys.argv[1]  # the call of StopRequest.__exit__ the second signal lands behind
real = getattr(signal, where)

def then_a_second_signal(*args, **kwargs):
    setattr(signal, where, real)
    result = real(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(1.0)
    return result

with train.StopRequest():
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(1.0)  # the handler and the watcher see the first
    setattr(signal, where, then_a_second_signal)
print("the second signal was lost", flush=True)
"""


@pytest.mark.parametrize("where", ["signal", "set_wakeup_fd"])
def test_a_second_signal_while_the_stop_request_closes_still_stops(repo_root, where):
    """The first restoring call of `__exit__` (a handler, or the wake-up fd) is followed at once
    by the second signal: the handler or the default action must still end the process."""
    result = subprocess.run([sys.executable, "-c", _SECOND_SIGNAL_DURING_EXIT, where], cwd=repo_root,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode in (130, -signal.SIGINT), result.stdout + result.stderr[-2000:]
    assert "lost" not in result.stdout and "Traceback" not in result.stderr


def test_a_stop_always_saves_the_step_it_ends_on(monkeypatch, tmp_path):
    """Whichever step the stop flag is first seen at, the run ends on a checkpoint of that step
    (the flag is read once per step, so no read between the save and the loop's end can see it
    first)."""

    def stop_at_read(k):
        class StopAtRead:
            def __init__(self, checkpoint_dir=None):
                self.reads = 0

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            @property
            def signal(self):
                self.reads += 1
                return signal.SIGTERM if self.reads >= k else None
        return StopAtRead

    for k in (1, 2, 3):  # read 1: before the first step (a stop then trains nothing)
        monkeypatch.setattr(train, "StopRequest", stop_at_read(k))
        workdir = tmp_path / f"stop_at_read_{k}"
        state = train.train_and_evaluate(tiny(num_steps=10, checkpoint_every=1000), str(workdir))
        assert int(state.step) == k - 1
        assert os.listdir(workdir / "checkpoints") == ([str(k - 1)] if k > 1 else [])


def test_a_stop_request_leaves_no_watcher_or_descriptor_behind():
    """Each run's watcher thread ends with the run and closes its own end of the pipe (it owns
    it: a descriptor closed under a thread that may still read it can be reused by another file,
    which the thread would then read from). Also for a body that ends before the watcher ran."""
    import threading

    fds = sorted(os.listdir("/proc/self/fd"))
    for _ in range(50):
        with train.StopRequest() as stop:
            pass
        assert not stop._watcher.is_alive()
    with pytest.raises(RuntimeError):
        with train.StopRequest():
            raise RuntimeError("a step failed")
    assert not [t for t in threading.enumerate() if t.name == "stop-watcher"]
    assert sorted(os.listdir("/proc/self/fd")) == fds
    assert signal.set_wakeup_fd(-1) == -1  # the interpreter's wake-up fd is restored


def test_ctrl_c_before_training_is_one_line(repo_root, tmp_path):
    proc = start_launch(repo_root, "--config=configs/dcgan_mnist.py:tiny", f"--workdir={tmp_path / 'run'}")
    time.sleep(2.5)  # importing, loading data or compiling
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert "Traceback" not in out and "Exception ignored" not in out, out[-3000:]
    # Stopped at once (or, if the signal met the loop, after saving a checkpoint).
    assert (proc.returncode == 130 and "ganjax: interrupted" in out) or (
        proc.returncode == 0 and "Received SIGINT" in out), out[-3000:]


def test_a_read_only_workdir_is_one_line(repo_root, tmp_path):
    """On a read-only tmpfs, where the test may mount one (root ignores permission bits)."""
    with mounted_tmpfs(tmp_path / "ro_fs", "ro,size=1m") as mount:
        result = launch(repo_root, "--config=configs/dcgan_mnist.py:tiny", f"--workdir={mount / 'run'}")
        errors = [l for l in result.stderr.splitlines() if l.startswith("ganjax: error:")]
        assert result.returncode == 2 and len(errors) == 1 and "is not writable" in errors[0], result.stderr[-2000:]
        assert "Traceback" not in result.stderr
