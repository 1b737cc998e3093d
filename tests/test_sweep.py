"""``xae sweep`` end to end on the bundled digits: a β grid, any-key grids, failures, Optuna,
and an Optuna study shared by worker processes through a SQLite file or a journal file."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.image as mpimg
import pytest
from conftest import SUBPROCESS_ENV, TINY, run_xae

from xae.cli import main
from xae.sweep.grid import parse_grid, run_name, split_values

FAST = [*TINY, "train.figures=false"]  # the sweep draws its own figures; the runs need none
REPORT = {"sweep.json", "table.md", "table.csv", "rate_distortion.png", "latent_maps.png"}


def sweep(out: Path, *args: str) -> object:
    """The sweep as a user runs it: ``python -m xae sweep ...`` in a subprocess."""
    return run_xae("sweep", *args, "--steps", "40", "--set", *FAST, "--out", str(out))


def sweep_here(capsys, out: Path, *args: str, steps: str = "40") -> tuple[int, str, str]:
    """The same command through ``xae.cli.main`` in this process (its children are still
    real ``xae train`` processes); saves a Python start. Returns (status, stdout, stderr)."""
    capsys.readouterr()
    status = main(["sweep", *args, "--steps", steps, "--set", *FAST, "--out", str(out)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(scope="module")
def beta_sweep(tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("sweep") / "beta"
    p = sweep(out, "--beta", "0.25,4")
    assert p.returncode == 0, p.stderr
    return out, p


def test_beta_sweep_writes_its_folder(beta_sweep) -> None:
    out, p = beta_sweep
    names = {q.name for q in out.iterdir()}
    assert names == REPORT | {"beta=0.25", "beta=4"}  # no logs/, no temporary files
    for run in ("beta=0.25", "beta=4"):
        files = {q.name for q in (out / run).iterdir()}
        assert {"metrics.json", "config.json", "train.log"} <= files
    for png in ("rate_distortion.png", "latent_maps.png"):
        assert mpimg.imread(out / png).std() > 0
    record = json.loads((out / "sweep.json").read_text())
    assert record["swept"] == ["beta.value"] and record["runs_failed"] == 0
    runs = {r["name"]: r for r in record["runs"]}
    assert runs["beta=4"]["params"] == {"beta.value": 4.0}
    assert runs["beta=4"]["status"] == "done" and runs["beta=4"]["step"] == 40
    # a heavier KL weight buys a lower rate
    assert runs["beta=4"]["test"]["rate"] < runs["beta=0.25"]["test"]["rate"]
    assert record["best"] in runs
    table = (out / "table.md").read_text()
    assert "| beta.value |" in table and "neg_elbo" in table and "active_units" in table
    assert (out / "table.csv").read_text().startswith("run,beta.value,status,neg_elbo")
    assert "| beta=0.25 |" in p.stdout and f"sweep written to {out}" in p.stdout


def test_a_full_folder_is_refused_then_resumed(beta_sweep, capsys) -> None:
    out, _ = beta_sweep
    before = (out / "sweep.json").stat().st_mtime_ns
    status, _, err = sweep_here(capsys, out, "--beta", "0.25,4")
    assert status == 2 and "pass --resume" in err
    assert (out / "sweep.json").stat().st_mtime_ns == before
    status, text, err = sweep_here(capsys, out, "--beta", "0.25,4", "--resume")
    assert status == 0, err
    assert text.count(": reused in") == 2  # nothing trained again
    status, _, err = sweep_here(capsys, out, "--beta", "0.25,4", "--resume", steps="41")
    assert status == 2 and "train.steps differ" in err


def test_a_grid_over_any_key(tmp_path: Path, capsys) -> None:
    out = tmp_path / "dims"
    status, _, err = sweep_here(capsys, out, "--grid", "model.latent_dim=2,3")
    assert status == 0, err
    assert REPORT | {"latent_dim=2", "latent_dim=3"} == {q.name for q in out.iterdir()}
    cfg = json.loads((out / "latent_dim=3" / "config.json").read_text())
    assert cfg["model"]["latent_dim"] == 3 and cfg["train"]["steps"] == 40
    record = json.loads((out / "sweep.json").read_text())
    assert record["swept"] == ["model.latent_dim"]
    assert [r["params"]["model.latent_dim"] for r in record["runs"]] == [2, 3]


def test_a_failing_run_is_reported_and_the_others_finish(tmp_path: Path, capsys) -> None:
    out = tmp_path / "lr"
    status, _, err = sweep_here(capsys, out, "--grid", "train.lr=1e-3,1e9")  # 1e9 diverges
    assert status == 1
    assert "1 of 2 runs failed" in err and "lr=1e+09" in err
    assert "training diverged" in err  # the tail of the child's log
    assert (out / "lr=0.001" / "metrics.json").is_file()
    assert (out / "logs" / "lr=1e+09.log").is_file()  # the run left no folder, its log stays
    record = json.loads((out / "sweep.json").read_text())
    assert [r["status"] for r in record["runs"]] == ["done", "failed"]
    assert record["runs_failed"] == 1 and record["best"] == "lr=0.001"
    assert "| failed |" in (out / "table.md").read_text()


@pytest.mark.parametrize("args, message", [
    (["--grid", "model.latent_dm=2,3"], "did you mean 'model.latent_dim'"),
    (["--grid", "model.latent_dim=2,x"], "expects an integer"),
    (["--grid", "model.likelihood=bernoulli,gausian"], "did you mean 'gaussian'"),
    (["--grid", "latent_dim=0,2"], "'model.latent_dim' must be ≥ 1"),
    (["--beta", "1,1.0"], "lists the value 1.0 twice"),
    (["--beta", "1,2", "--set", "beta.value=3"], "both fixed with --set and swept"),
    (["--beta", "1,2", "--optuna"], "drop --beta/--grid"),
    (["--optuna", "--space", "model.likelihood=0:1"], "a range LO:HI needs a numeric key"),
    ([], "nothing to sweep"),
])
def test_bad_sweeps_exit_2_and_write_nothing(tmp_path: Path, capsys, args: list[str],
                                             message: str) -> None:
    out = tmp_path / "never"
    assert main(["sweep", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xae: error: ") and message in err
    assert not out.exists()


def test_without_optuna_the_error_says_what_to_install(tmp_path: Path, capsys,
                                                       monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)  # makes `import optuna` fail
    out = tmp_path / "never"
    assert main(["sweep", "--optuna", "--space", "beta.value=0.1:10", "--out", str(out)]) == 2
    assert "pip install 'xae[sweep]'" in capsys.readouterr().err
    assert not out.exists()


def test_optuna_search(tmp_path: Path, capsys) -> None:
    pytest.importorskip("optuna")
    out = tmp_path / "optuna"
    status, _, err = sweep_here(capsys, out, "--optuna", "--trials", "2", "--space",
                                "beta.value=0.1:10:log", "--seed", "1")
    assert status == 0, err
    trials = sorted(q.name for q in out.iterdir() if q.name.startswith("trial-"))
    assert len(trials) == 2 and all((out / t / "metrics.json").is_file() for t in trials)
    assert REPORT | {"optuna.json"} <= {q.name for q in out.iterdir()}
    summary = json.loads((out / "optuna.json").read_text())
    assert summary["direction"] == "minimize" and summary["metric"] == "neg_elbo"
    assert 0.1 <= summary["best_params"]["beta.value"] <= 10
    assert summary["best_run"] in trials and len(summary["trials"]) == 2
    record = json.loads((out / "sweep.json").read_text())
    assert record["kind"] == "optuna" and record["best"] == summary["best_run"]


def test_grid_parsing() -> None:
    assert split_values("[64],[128, 64]") == ["[64]", "[128, 64]"]
    assert parse_grid("0.1,1", ["latent_dim=2,3"]) == {"beta.value": ["0.1", "1"],
                                                       "model.latent_dim": ["2", "3"]}
    assert run_name({"beta.value": 0.5, "model.mlp.hidden": [64, 32]}) == "beta=0.5,hidden=64-32"
    assert run_name({"model.lr": 1.0, "train.lr": 2.0}) == "model.lr=1,train.lr=2"


# ---- a study shared through --storage: workers on other machines --join it ------------------

OPTUNA = ["--optuna", "--space", "beta.value=0.1:10:log"]
CLAIMER = """
import sys
from xae.sweep import storage, study
url = sys.argv[1]
shared = study.join(storage.open_storage(url, create=False), url, "s")
print("ready", flush=True)
sys.stdin.readline()  # every claimer starts at once
taken = []
while (number := study.claim(shared)) is not None:
    taken.append(number)
print(*taken)
"""


def storage_url(tmp_path: Path, kind: str) -> str:
    """An absolute SQLite or journal URL in ``tmp_path``."""
    return {"sqlite": f"sqlite:///{tmp_path / 'sweep.db'}",
            "journal": f"journal:///{tmp_path / 'sweep.log'}"}[kind]


def load_study(url: str) -> object:
    """The study ``s`` read with Optuna alone."""
    import optuna

    if url.startswith("journal:///"):
        from optuna.storages.journal import JournalFileBackend

        backend = JournalFileBackend(url[len("journal:///"):])
        return optuna.load_study(study_name="s", storage=optuna.storages.JournalStorage(backend))
    return optuna.load_study(study_name="s", storage=url)


def start_study(capsys, out: Path, url: str, trials: int, *args: str) -> str:
    """Start the study ``s`` with --jobs 0 (it runs no trial); returns what it printed."""
    capsys.readouterr()
    status = main(["sweep", *OPTUNA, "--trials", str(trials), "--storage", url, "--study", "s",
                   "--jobs", "0", "--steps", "40", "--set", *FAST, "train.threads=1",
                   "--out", str(out), *args])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    return captured.out


def worker(url: str) -> subprocess.Popen:
    """``xae sweep --join s`` in its own process, one trial at a time."""
    return subprocess.Popen([sys.executable, "-m", "xae", "sweep", "--join", "s", "--storage",
                             url, "--jobs", "1"], env={**os.environ, **SUBPROCESS_ENV},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float = 600) -> str:
    """Wait for a worker (killed past ``timeout``); it must succeed. Returns its stdout."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"a worker ran past {timeout} s:\n{out}\n{err}")
    assert proc.returncode == 0, err
    return out


def reported(text: str) -> list[str]:
    """The trials a worker says it trained (``[2/4] trial-001,beta=3.1: done in ...``)."""
    return [line.split()[1].rstrip(":") for line in text.splitlines() if ": done in " in line]


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_workers_racing_for_trials_never_take_the_same(tmp_path: Path, kind: str) -> None:
    pytest.importorskip("optuna")
    from xae.sweep import storage, study

    url = storage_url(tmp_path, kind)
    study.start(storage.open_storage(url), url, "s", {"direction": "minimize", "trials": 40})
    procs = [subprocess.Popen([sys.executable, "-c", CLAIMER, url], text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              env={**os.environ, **SUBPROCESS_ENV}) for _ in range(3)]
    try:
        assert [p.stdout.readline().strip() for p in procs] == ["ready"] * 3
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        taken = [int(n) for p in procs for n in p.communicate(timeout=300)[0].split()]
    finally:
        for p in procs:
            p.kill()
    assert sorted(taken) == list(range(40))  # every trial taken once: none twice, none left


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_two_workers_share_a_study(tmp_path: Path, capsys, kind: str) -> None:
    pytest.importorskip("optuna")
    from optuna.trial import TrialState

    url, out = storage_url(tmp_path, kind), tmp_path / "sweep"
    text = start_study(capsys, out, url, 4)
    assert f"xae sweep --join s --storage {url}" in text
    assert not any(out.glob("trial-*"))  # --jobs 0: the study is left to the workers
    procs = [worker(url), worker(url)]
    try:
        texts = [finish(p) for p in procs]
    finally:
        for p in procs:
            p.kill()  # (a no-op for a worker that has ended)
    trials = load_study(url).get_trials()
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    runs = sorted(t.user_attrs["run"] for t in trials)
    assert sorted(reported(texts[0]) + reported(texts[1])) == runs  # each trained by one worker
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("trial-")) == runs
    for t in trials:
        path = out / t.user_attrs["run"]
        assert path.name.startswith(f"trial-{t.number:03d},")
        assert json.loads((path / "metrics.json").read_text())["test"]["neg_elbo"] == t.value
        cfg = json.loads((path / "config.json").read_text())
        assert cfg["beta"]["value"] == t.params["beta.value"] and cfg["train"]["steps"] == 40
        log = (path / "train.log").read_text().splitlines()
        assert sum(line.startswith("$ ") for line in log) == 1  # trained once, in one process
    record = json.loads((out / "sweep.json").read_text())
    assert sorted(r["name"] for r in record["runs"]) == runs and record["runs_failed"] == 0
    summary = json.loads((out / "optuna.json").read_text())
    assert [t["number"] for t in summary["trials"]] == [0, 1, 2, 3]
    assert all(t["worker"].endswith(tuple(f":{p.pid}" for p in procs)) for t in summary["trials"])


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            kids.append(int(stat.parent.name))
    return kids


def wait_for(what: str, check, timeout: float = 300) -> object:
    """Poll ``check`` until it returns something true (failing after ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} after {timeout} s")
        time.sleep(0.1)
    return value


def test_a_killed_workers_trial_is_taken_over(tmp_path: Path, capsys) -> None:
    pytest.importorskip("optuna")
    if not Path("/proc/self/stat").is_file():
        pytest.skip("finds the worker's training process in /proc")
    from optuna.trial import TrialState

    url, out = storage_url(tmp_path, "journal"), tmp_path / "sweep"
    start_study(capsys, out, url, 2, "--heartbeat", "1")
    first = worker(url)
    try:  # the worker has taken trial 0 and started training it: kill both, as a crash would
        kids = wait_for("training process", lambda: children(first.pid))
    finally:
        first.kill()
        first.communicate()
    for pid in kids:
        os.kill(pid, signal.SIGKILL)
    [running] = load_study(url).get_trials(states=(TrialState.RUNNING,))
    assert running.number == 0
    text = finish(worker(url))
    assert "trial 0 lost its worker (no heartbeat for 5 s)" in text
    trials = load_study(url).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL] + [TrialState.COMPLETE] * 2
    assert [t.user_attrs.get("replaces") for t in trials] == [None, None, 0]  # 2 replaces 0
    runs = sorted(t.user_attrs["run"] for t in trials[1:])
    assert sorted(reported(text)) == runs
    assert sorted(r["name"] for r in json.loads((out / "sweep.json").read_text())["runs"]) == runs


def test_a_trial_taken_over_while_it_runs_is_not_counted(tmp_path: Path, capsys) -> None:
    pytest.importorskip("optuna")
    from optuna.trial import TrialState

    from xae.sweep import storage, study

    url, out = storage_url(tmp_path, "sqlite"), tmp_path / "sweep"
    start_study(capsys, out, url, 2)
    proc = worker(url)
    try:  # while trial 0 trains, fail it as lost, as a worker that saw no heartbeat would
        wait_for("trial 0 taken", lambda: load_study(url).get_trials()[0].user_attrs.get("run"))
        shared = study.join(storage.open_storage(url, create=False), url, "s")
        assert study.release(shared, 0)
    finally:
        text = finish(proc)
    assert "trial 0 was taken over by another worker while it ran" in text
    trials = load_study(url).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL] + [TrialState.COMPLETE] * 2
    assert [t.user_attrs.get("replaces") for t in trials] == [None, None, 0]
    assert (out / trials[0].user_attrs["run"] / "metrics.json").is_file()  # it did finish
    runs = sorted(t.user_attrs["run"] for t in trials[1:])
    assert sorted(reported(text)) == runs  # but only the others count
    assert sorted(r["name"] for r in json.loads((out / "sweep.json").read_text())["runs"]) == runs


def test_a_shared_study_records_its_settings_and_refuses_mismatches(tmp_path: Path,
                                                                     capsys) -> None:
    optuna = pytest.importorskip("optuna")
    url, out = storage_url(tmp_path, "sqlite"), tmp_path / "sweep"
    start_study(capsys, out, url, 2)
    settings = load_study(url).user_attrs["xae.sweep"]
    assert settings["trials"] == 2 and settings["out"] == str(out.resolve())
    assert settings["metric"] == "neg_elbo" and settings["direction"] == "minimize"
    assert settings["config"]["train"]["steps"] == 40
    assert settings["config"]["model"]["mlp"]["hidden"] == [64]
    assert settings["space"]["beta.value"]["attributes"]["log"] is True
    # the same command continues the study; another space, budget or config is refused
    assert "continuing study 's'" in start_study(capsys, out, url, 2)
    same = {"--space": ["beta.value=0.1:10:log"], "--trials": ["2"],
            "--set": [*FAST, "train.threads=1"], "--heartbeat": ["30"]}
    for flag, values, what in [("--trials", ["3"], "(--trials differ)"),
                               ("--space", ["beta.value=1:2"], "(--space differ)"),
                               ("--set", [*FAST, "train.lr=0.01"], "(the config (train.lr) "),
                               ("--heartbeat", ["2"], "(--heartbeat differ)")]:
        argv = [x for f, v in {**same, flag: values}.items() for x in (f, *v)]
        capsys.readouterr()
        assert main(["sweep", "--optuna", "--storage", url, "--study", "s", "--jobs", "0",
                     "--steps", "40", "--out", str(out), *argv]) == 2
        err = capsys.readouterr().err
        assert "was started with other settings " + what in err and "--join s" in err
    optuna.create_study(storage=url, study_name="plain")
    for name, message in [("nope", "no study 'nope' in sqlite:///"),
                          ("nope", "(the studies there: s, plain)"),
                          ("plain", "'plain' in sqlite:///"),
                          ("plain", "was not started by xae sweep")]:
        capsys.readouterr()
        assert main(["sweep", "--join", name, "--storage", url]) == 2
        err = capsys.readouterr().err
        assert err.startswith("xae: error: ") and message in err and err.count("\n") == 1


@pytest.mark.parametrize("args, message", [
    (["--join", "s"], "--join needs --storage"),
    (["--join", "s", "--storage", "sqlite:///s.db", "--steps", "5"], "drop --steps"),
    (["--join", "s", "--storage", "sqlite:///s.db"], "there is no file 's.db'"),
    (["--join", "s", "--storage", "s.log"], "there is no file 's.log'"),
    (["--join", "s", "--storage", "journal:///s.jsonl"], "there is no file 's.jsonl'"),
    (["--beta", "1,2", "--storage", "sqlite:///s.db"], "--storage holds an Optuna study"),
    ([*OPTUNA, "--study", "s"], "--study goes with --storage"),
    ([*OPTUNA, "--jobs", "0"], "--jobs must be at least 1"),
    ([*OPTUNA, "--storage", "sqlite:///s.db", "--resume", "--out", "o"], "without --resume"),
    ([*OPTUNA, "--storage", "sqlite:///s.db", "--heartbeat", "0"], "--heartbeat must be"),
    ([*OPTUNA, "--storage", "sweep.db"], "not a storage xae knows"),
    ([*OPTUNA, "--storage", "redis://localhost"], "not a storage xae knows"),
    ([*OPTUNA, "--storage", "sqlite://"], "is not a file"),
    ([*OPTUNA, "--storage", "journal:/sweep.log"], "journal:///PATH"),
    ([*OPTUNA, "--storage", "sqlite:///no/such/s.db"], "the folder 'no/such' does not exist"),
])
def test_bad_storage_exits_2_and_writes_nothing(tmp_path: Path, capsys, monkeypatch,
                                                args: list[str], message: str) -> None:
    pytest.importorskip("optuna")
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xae: error: ") and message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []  # no storage file, no sweep folder


@pytest.mark.parametrize("url, module, package", [
    ("postgresql://me:secret@localhost/db", "psycopg", "'psycopg[binary]'"),
    ("postgresql+psycopg2://me:secret@localhost/db", "psycopg2", "psycopg2-binary"),
    ("mysql://me:secret@localhost/db", "MySQLdb", "mysqlclient"),
])
def test_a_missing_database_driver_is_named_and_the_password_is_not(
        tmp_path: Path, capsys, monkeypatch, url: str, module: str, package: str) -> None:
    pytest.importorskip("optuna")
    monkeypatch.setitem(sys.modules, module, None)  # makes `import <module>` fail
    assert main(["sweep", *OPTUNA, "--storage", url, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"'{module}' is not installed; pip install {package}" in err
    assert "secret" not in err and "me:***@localhost" in err
    assert not (tmp_path / "o").exists()
