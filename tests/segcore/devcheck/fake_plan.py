"""A plan for the device-check command-line tests: small Python commands instead of the project's
steps. ``FAKE_PLAN`` chooses it: "mixed" (default: one passes, one fails, one needs the first),
"hang" (a step that writes its process id to the work folder, then sleeps), "broken" (building it raises)."""
import os

from segcore.devcheck import Plan, Step


def build_plan(ctx):
    kind = os.environ.get("FAKE_PLAN", "mixed")
    py = ctx.python
    if kind == "broken":
        raise RuntimeError("the project does not import here")
    if kind == "hang":
        started = ctx.work("started")
        code = f"import os, time; open({started!r}, 'w').write(str(os.getpid())); time.sleep(120)"
        return Plan([Step("hang", "sleeps", "one", [[py, "-c", code]], timeout_s=300)])
    return Plan([
        Step("first", "writes a file", "one", [[py, "-c", "open('first.txt', 'w').close(); print('first ran')"]],
             timeout_s=60, cwd=ctx.work_dir),
        Step("second", "fails", "one", [[py, "-c", "import sys; print('second fails'); sys.exit(3)"]], timeout_s=60),
        Step("third", "needs first", "two", [[py, "-c", "print('third ran')"]], timeout_s=60, needs=("first",)),
    ])
