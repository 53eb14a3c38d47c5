"""Model artifacts: deterministic bytes (skops + JSON metadata), a SHA-256, and a guarded load.

See docs/model-persistence.md for the format and the threat model.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import zipfile
from collections.abc import Mapping
from typing import Any

from churndesk.errors import ChurndeskError
from churndesk.ml.features import FeatureSchema
from churndesk.ml.train import TrainedModel

FORMAT = "churndesk-model"
FORMAT_VERSION = 1
META_ENTRY = "churndesk-model.json"
ESTIMATOR_ENTRY = "estimator.skops"
#: Every non-default type our two pipelines (optionally calibrated) contain. skops refuses to
#: build any other type, so an artifact cannot make the loader import or call anything else.
TRUSTED_TYPES = (
    "functools.partial",  # HGB's internal FunctionTransformer(partial(check_array, ...))
    "numpy.dtype",  # OneHotEncoder(dtype=...)
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
)
#: A zip timestamp is part of its bytes; a fixed one keeps equal models byte-identical.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_MAX_META_BYTES = 64 * 1024 * 1024


def sha256_of(blob: bytes) -> str:
    """Hex SHA-256 of an artifact (what the database stores next to it)."""
    return hashlib.sha256(blob).hexdigest()


def dump_model(model: TrainedModel) -> bytes:
    """The artifact bytes of a trained model; equal models give equal bytes.

    A zip holding ``churndesk-model.json`` (format, schema, parameters, metrics, driver
    tables) and ``estimator.skops`` (the fitted pipeline in skops' format, made canonical).
    """
    import skops.io as sio  # deferred: importing churndesk.ml must stay light

    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **model.metadata()}
    meta_bytes = json.dumps(meta, sort_keys=True, indent=1, allow_nan=False).encode("utf-8")
    estimator_bytes = _canonical_zip(sio.dumps(model.estimator))
    # The skops entry is already deflated inside; compressing it again would only cost time.
    return _write_zip(
        {META_ENTRY: meta_bytes, ESTIMATOR_ENTRY: estimator_bytes}, stored={ESTIMATOR_ENTRY}
    )


def load_model(
    blob: bytes,
    expected_sha256: str,
    expected_schema: FeatureSchema | Mapping[str, Any] | None,
) -> TrainedModel:
    """Verify and load an artifact. Checks, in order, before anything is deserialised:

    1. the SHA-256 of ``blob`` equals ``expected_sha256`` (constant-time compare);
    2. the metadata is this format and version, and its feature schema equals
       ``expected_schema`` (the one recorded with the model version; None skips this);
    3. the estimator contains only the types in :data:`TRUSTED_TYPES` and skops' defaults.

    Raises ChurndeskError on any mismatch; nothing is deserialised from a refused artifact.
    """
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise ChurndeskError("The stored model is not binary data; it cannot be loaded.")
    blob = bytes(blob)
    actual = sha256_of(blob)
    if not hmac.compare_digest(actual, str(expected_sha256).strip().lower()):
        raise ChurndeskError(
            "The stored model does not match its recorded checksum: it is damaged or was "
            "altered, so it was not loaded. Retrain or restore the model.",
            details=f"expected sha256 {expected_sha256}, got {actual}",
        )
    entries = _read_zip(blob)
    meta = _read_meta(entries)
    schema = FeatureSchema.from_dict(meta["schema"])
    if expected_schema is not None:
        expected = (
            expected_schema
            if isinstance(expected_schema, FeatureSchema)
            else FeatureSchema.from_dict(expected_schema)
        )
        if schema.fingerprint() != expected.fingerprint():
            raise ChurndeskError(
                "The stored model was trained on different features than this model version "
                "records, so it was not loaded.",
                details=_schema_difference(expected, schema),
            )
    estimator = _deserialise_estimator(entries[ESTIMATOR_ENTRY])
    return TrainedModel.from_metadata(meta, estimator)


def _deserialise_estimator(data: bytes) -> Any:
    """skops load restricted to the trusted types; only reached after every check passed."""
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:  # a malformed skops payload: refuse, never guess
        raise ChurndeskError("The stored model is not readable.", details=repr(exc)) from exc
    refused = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if refused:
        raise ChurndeskError(
            "The stored model contains types this program does not trust, so it was not "
            "loaded. It may come from a newer program version; retrain it here.",
            details="untrusted types: " + ", ".join(refused),
        )
    try:
        estimator = sio.loads(data, trusted=list(TRUSTED_TYPES))
    except Exception as exc:
        raise ChurndeskError("The stored model could not be loaded.", details=repr(exc)) from exc
    if not hasattr(estimator, "predict_proba"):
        raise ChurndeskError("The stored model is not a classifier.")
    return estimator


def _read_zip(blob: bytes) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            names = set(archive.namelist())
            if names != {META_ENTRY, ESTIMATOR_ENTRY}:
                raise ChurndeskError(
                    "The stored model is not a churndesk model file.",
                    details=f"entries: {sorted(names)}",
                )
            if archive.getinfo(META_ENTRY).file_size > _MAX_META_BYTES:
                raise ChurndeskError("The stored model's description is implausibly large.")
            return {name: archive.read(name) for name in (META_ENTRY, ESTIMATOR_ENTRY)}
    except zipfile.BadZipFile as exc:
        raise ChurndeskError(
            "The stored model is not a churndesk model file.", details=repr(exc)
        ) from exc


def _read_meta(entries: Mapping[str, bytes]) -> dict[str, Any]:
    try:
        meta = json.loads(entries[META_ENTRY].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ChurndeskError("The stored model's description is unreadable.") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ChurndeskError("The stored model is not a churndesk model file.")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ChurndeskError(
            f"The stored model uses format version {meta.get('format_version')}; this "
            f"program reads version {FORMAT_VERSION}. Retrain the model.",
        )
    return meta


def _schema_difference(expected: FeatureSchema, actual: FeatureSchema) -> str:
    want = {f.name: f for f in expected.features}
    have = {f.name: f for f in actual.features}
    parts = []
    if missing := sorted(set(want) - set(have)):
        parts.append("missing: " + ", ".join(missing))
    if extra := sorted(set(have) - set(want)):
        parts.append("unexpected: " + ", ".join(extra))
    if changed := sorted(n for n in set(want) & set(have) if want[n] != have[n]):
        parts.append("changed: " + ", ".join(changed))
    if expected.reference_date != actual.reference_date:
        parts.append(f"reference date {expected.reference_date} vs {actual.reference_date}")
    return "; ".join(parts) or "feature order or schema version differs"


def _write_zip(
    entries: Mapping[str, bytes], stored: frozenset[str] | set[str] = frozenset()
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_STORED if name in stored else zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data, compresslevel=6)
    return buffer.getvalue()


def _canonical_zip(skops_bytes: bytes) -> bytes:
    """skops' bytes with memory addresses and timestamps replaced by stable values.

    skops names array files and ``__id__`` fields after ``id(obj)`` (memory addresses) and
    stamps each zip entry with the current time, so two dumps of the same model differ.
    Renumbering ids and file names in first-seen order of its JSON tree (which is itself
    deterministic) and writing the entries with a fixed timestamp keeps the structure — and
    what loads — identical while making the bytes reproducible.
    """
    with zipfile.ZipFile(io.BytesIO(skops_bytes)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(files.pop("schema.json").decode("utf-8"))
    ids: dict[int, int] = {}
    names: dict[str, str] = {}

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("__id__"), int):
                node["__id__"] = ids.setdefault(node["__id__"], len(ids) + 1)
            if isinstance(node.get("file"), str) and node["file"] in files:
                old = node["file"]
                suffix = old[old.rfind(".") :] if "." in old else ""
                node["file"] = names.setdefault(old, f"{len(names) + 1:06d}{suffix}")
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schema)
    if set(names) != set(files):
        # A file the tree does not point to would be dropped; refuse rather than lose data.
        raise ChurndeskError(
            "The model could not be saved reproducibly.",
            details=f"unreferenced skops entries: {sorted(set(files) - set(names))}",
        )
    entries = {"schema.json": json.dumps(schema, indent=1).encode("utf-8")}
    for old, new in sorted(names.items(), key=lambda kv: kv[1]):
        entries[new] = files[old]
    return _write_zip(entries)


__all__ = ["TRUSTED_TYPES", "dump_model", "load_model", "sha256_of"]
