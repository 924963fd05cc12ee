"""What /readyz checks: the database at the current schema, the keys, the served models.

Each check answers ok plus a short, secret-free reason; a failure never raises.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import text

from governance.accounts.actor import SYSTEM
from governance.errors import CofreError
from governance.migrations import current_revision, head_revision
from governance.operations.jobs import BACKUP_JOB, CHECKPOINT_JOB, DRILL_JOB
from governance.operations.storage import human_bytes
from server.container import Container

# Checks that are reported but do not decide readiness (see _backups for why).
ADVISORY = ("backups", "audit_chain", "sklearn_versions", "storage")


def readiness(container: Container) -> dict[str, dict[str, Any]]:
    checks: dict[str, Callable[[Container], str]] = {
        "database": _database,
        "keys": _keys,
        "models": _models,
        "rollouts": _rollouts,
        "sklearn_versions": _sklearn_versions,
        "backups": _backups,
        "audit_chain": _audit_chain,
        "storage": _storage,
    }
    results = {name: _run(check, container) for name, check in checks.items()}
    for name in ADVISORY:
        results[name]["advisory"] = True
    return results


def _run(check: Callable[[Container], str], container: Container) -> dict[str, Any]:
    try:
        return {"ok": True, "detail": check(container)}
    except CofreError as exc:
        return {"ok": False, "detail": exc.detail}
    except Exception as exc:  # a readiness probe reports, it never crashes
        return {"ok": False, "detail": type(exc).__name__}


def _database(container: Container) -> str:
    with container.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    current, head = current_revision(container.engine), head_revision(container.engine)
    if current != head:
        raise CofreError(f"schema at {current}, code expects {head}; run `cofre init`")
    return f"schema {current}"


def _keys(container: Container) -> str:
    kek_id = container.keyring.current_kek_id()
    container.keyring.kek(kek_id)
    for name in ("pseudonym.key", "audit-signing.key", "audit-mac.key"):
        container.keyring.secret(name)
    return f"master key {kek_id}"


def _models(container: Container) -> str:
    """Every aliased version's artifact authenticates, its signature still verifies and
    it may load under the running scikit-learn (no estimator is loaded)."""
    count = 0
    with container.read() as session:
        for model in container.registry.models(session, SYSTEM):
            for alias in model.aliases:
                version = container.registry.resolve(session, model.name, alias=alias.name)
                container.registry.check_artifact(version)
                container.registry.verify_provenance(session, version)
                container.registry.refuse_unverified(version)
                count += 1
    return f"{count} aliased versions loadable"


def _sklearn_versions(container: Container) -> str:
    """Every version, aliased or not, that would be refused at load: trained under
    another scikit-learn minor version and not verified under the running one.
    Advisory: an aliased one already fails `models`; the others serve nobody yet."""
    running = container.registry.running_sklearn
    with container.read() as session:
        refused = [
            f"{v.model.name}:{v.version} (trained with {v.sklearn_version})"
            for v in container.registry.unverified(session)
        ]
    if refused:
        raise CofreError(
            f"{len(refused)} versions need `cofre models verify` under scikit-learn "
            f"{running}: {', '.join(refused[:50])}"
        )
    return f"every version may load under scikit-learn {running}"


def _rollouts(container: Container) -> str:
    """Every running rollout's candidate authenticates, and whether this worker holds
    it loaded (a blue-green switch waits for that, answering with the champion)."""
    facts = []
    predictor = container.predictor
    with container.read() as session:
        for rollout in container.rollouts.running(session):
            version = container.registry.resolve(
                session, rollout.model_name, version=rollout.candidate_version
            )
            container.registry.check_artifact(version)
            container.registry.refuse_unverified(version)
            served = predictor.served_version(SYSTEM, rollout.model_name, version=version.version)
            loaded = predictor.holds(served)
            facts.append(
                f"{rollout.model_name} {rollout.strategy} v{rollout.candidate_version} "
                f"{'loaded' if loaded else 'not loaded'} in this worker"
            )
    return "; ".join(facts) or "no rollout running"


def _backups(container: Container) -> str:
    """The latest backup and restore drill runs; advisory, never flips readiness.

    Readiness tells a load balancer whether *this node* can serve correct,
    audited predictions now. A failed backup or drill does not change that, and
    every node shares the same backup state, so letting it flip readiness would
    take the whole service out of rotation at once: an outage caused by a
    problem that needs an operator, not a traffic shift. It shows here as
    ok=false (for monitoring to alert on), in the job history and in the audit log.
    """
    with container.read() as session:
        runs = {
            "backup": container.jobs.latest(session, BACKUP_JOB),
            "drill": container.jobs.latest(session, DRILL_JOB),
        }
    problems, facts = [], []
    for label, run in runs.items():
        when = run.finished_at.isoformat() if run and run.finished_at else "-"
        if run is None:
            facts.append(f"no {label} has run yet")
        elif run.outcome == "failed":
            problems.append(f"last {label} FAILED at {when}: {run.message[:200]}")
        else:
            facts.append(f"last {label} ok at {when}")
    if problems:
        raise CofreError("; ".join(problems + facts))
    return "; ".join(facts)


def _audit_chain(container: Container) -> str:
    """The last checkpoint run: the chain verified since the previous one, or where it
    broke. Advisory, as backups are: a broken chain needs an investigation, not an
    outage, and this node still serves audited predictions."""
    with container.read() as session:
        run = container.jobs.latest(session, CHECKPOINT_JOB)
    if run is None:
        return "no checkpoint run yet"
    when = run.finished_at.isoformat() if run.finished_at else "-"
    if run.outcome == "failed":
        raise CofreError(f"the audit chain did not verify at {when}: {run.message[:300]}")
    return f"verified at {when}: {run.message[:200]}"


def _storage(container: Container) -> str:
    """Free space of each directory the appliance writes, and the database's size;
    not ok when a file system is under the floor. Advisory: this node still serves
    while space lasts, and the `disk` alert is what calls an operator."""
    storage = container.storage
    spaces = storage.spaces()
    size = storage.database_bytes()
    facts = [
        f"{s.directory} {human_bytes(s.free_bytes)} free ({s.free_percent:.1f}%)" for s in spaces
    ]
    facts.append(f"database {human_bytes(size) if size is not None else 'size unknown'}")
    low = storage.low_disks(spaces)
    if low:
        names = ", ".join("+".join(disk.directories) for disk in low)
        raise CofreError(f"low on disk space: {names}; " + "; ".join(facts))
    return "; ".join(facts)
