"""The command line as a user meets it: help, usage errors, clear messages."""
import time

from tests.conftest import run_cli


def test_help_lists_the_commands_and_starts_fast():
    t0 = time.perf_counter()
    proc = run_cli("--help", check=True)
    elapsed = time.perf_counter() - t0
    for command in ("db", "simulate", "ingest", "sequences", "demo"):
        assert command in proc.stdout
    assert "SPHEREDC_HOME" in proc.stdout
    assert elapsed < 5  # no heavy import on the way to --help (generous for loaded CI)


def test_usage_errors_exit_2_with_a_message():
    for args, words in [(("ingest", "--workers", "0", "x"), "must be 1 or more"),
                        (("sequences", "--limit", "-3"), "must be 1 or more"),
                        (("db", "restart"), "invalid choice"),
                        (("frobnicate",), "invalid choice")]:
        proc = run_cli(*args)
        assert proc.returncode == 2, args
        assert words in proc.stderr


def test_bad_input_gives_a_message_not_a_traceback(tmp_path):
    for args, words in [(("simulate", str(tmp_path / "n"), "--night", "2025-13-45"),
                         "YYYY-MM-DD"),
                        (("simulate", "/proc/nope", "--small"), "/proc/nope")]:
        proc = run_cli(*args)
        assert proc.returncode == 1, args
        assert words in proc.stderr and "Traceback" not in proc.stderr
