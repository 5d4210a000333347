"""The trainer's module structure: no import cycle (any import statement, top-level or inside a function), and the
core (every module outside the task packages) imports no task: tasks register what they add
(:mod:`trainer.registry`, each task's ``cli.py``)."""
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASKS = ("trainer.colorize", "trainer.inpaint", "trainer.upscale", "trainer.generate")


def _modules() -> dict[str, str]:
    out = {}
    for dp, _, fs in os.walk(ROOT):
        if "tests" in dp.split(os.sep):
            continue
        for f in fs:
            if f.endswith(".py"):
                p = os.path.join(dp, f)
                m = "trainer." + os.path.relpath(p, ROOT)[:-3].replace(os.sep, ".")
                out[m[: -len(".__init__")] if m.endswith(".__init__") else m] = p
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    g = {}
    for m, p in mods.items():
        pkg = m if p.endswith("__init__.py") else m.rsplit(".", 1)[0]
        deps = set()
        for n in ast.walk(ast.parse(open(p).read())):
            if isinstance(n, ast.ImportFrom):
                base = pkg.split(".")[: len(pkg.split(".")) - n.level + 1] if n.level else []
                tgt = ".".join(base + ([n.module] if n.module else [])) if n.level else (n.module or "")
                for a in n.names:
                    deps.add(f"{tgt}.{a.name}" if f"{tgt}.{a.name}" in mods else tgt)
            elif isinstance(n, ast.Import):
                deps.update(a.name for a in n.names)
        g[m] = {d for d in deps if d in mods and d != m}
    return g


def test_no_import_cycle():
    g = _graph()
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(g[m]):
            assert state.get(d) != 1, "import cycle: " + " -> ".join(path[path.index(d):] + [d]) if d in path else d
            if d not in state:
                visit(d, path + [d])
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m, [m])


def test_the_core_imports_no_task():
    g = _graph()
    bad = {m: sorted(d for d in ds if d.startswith(TASKS)) for m, ds in g.items()
           if not m.startswith(TASKS) and m != "trainer.__main__"}
    assert {m: ds for m, ds in bad.items() if ds} == {}
