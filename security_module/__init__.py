"""The security module (WELMEC 7.3 §3.2): keys, certificates, pairing, sealed envelopes,
signatures, software identifiers and the logbook. A pure library: no network I/O.

Public API reference: docs/security_module.md.
"""

from security_module.boot_counter import BootCounter
from security_module.checkpoint import (
    Checkpoint,
    NoteSigner,
    NoteVerifier,
    SignedCheckpoint,
    open_checkpoint,
)
from security_module.envelope import Opener, SealedEnvelope, Sealer
from security_module.errors import (
    AuthenticationFailed,
    AuthorizationError,
    CertificateInvalid,
    CheckpointMalformed,
    InvalidProof,
    KeyFileError,
    LogbookCorrupt,
    NonceExhausted,
    NotPaired,
    PairingFailed,
    ProvisioningError,
    ReplayDetected,
    SecurityError,
    SignatureInvalid,
    SoftwareIdMismatch,
    StateFileError,
)
from security_module.identity import DeviceIdentity, PeerCertificate, verify_device_certificate
from security_module.logbook import EntryType, Logbook, LogEntry
from security_module.logbook_verify import LogbookVerification, verify_logbook
from security_module.merkle import (
    CompactRange,
    ConsistencyProof,
    InclusionProof,
    MerkleTree,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from security_module.pairing import (
    MotherUnitPairing,
    PairingAuthorization,
    PairingConfirm,
    PairingHello,
    PairingResponse,
    SensorPairing,
    issue_authorization,
)
from security_module.pairing_store import PairingRecord, PairingStore
from security_module.provisioning import Provisioned, ProvisionSummary, provision, role_of
from security_module.replay import ReplayState, ReplayWindow
from security_module.signing import canonical_json, sign, verify
from security_module.software_id import (
    SoftwareIdentifier,
    check_software_id,
    compute_software_id,
)
from security_module.type_approval import (
    GasMeterParameters,
    KnownAnswerTest,
    TypeApproval,
    convert_to_base,
)

__all__ = [
    "AuthenticationFailed",
    "AuthorizationError",
    "BootCounter",
    "CertificateInvalid",
    "Checkpoint",
    "CheckpointMalformed",
    "CompactRange",
    "ConsistencyProof",
    "DeviceIdentity",
    "EntryType",
    "GasMeterParameters",
    "InclusionProof",
    "InvalidProof",
    "KeyFileError",
    "KnownAnswerTest",
    "LogEntry",
    "Logbook",
    "LogbookCorrupt",
    "LogbookVerification",
    "MerkleTree",
    "MotherUnitPairing",
    "NonceExhausted",
    "NotPaired",
    "NoteSigner",
    "NoteVerifier",
    "Opener",
    "PairingAuthorization",
    "PairingConfirm",
    "PairingFailed",
    "PairingHello",
    "PairingRecord",
    "PairingResponse",
    "PairingStore",
    "PeerCertificate",
    "ProvisionSummary",
    "Provisioned",
    "ProvisioningError",
    "ReplayDetected",
    "ReplayState",
    "ReplayWindow",
    "SealedEnvelope",
    "Sealer",
    "SecurityError",
    "SensorPairing",
    "SignatureInvalid",
    "SignedCheckpoint",
    "SoftwareIdMismatch",
    "SoftwareIdentifier",
    "StateFileError",
    "TypeApproval",
    "canonical_json",
    "check_software_id",
    "compute_software_id",
    "convert_to_base",
    "issue_authorization",
    "leaf_hash",
    "node_hash",
    "open_checkpoint",
    "provision",
    "role_of",
    "sign",
    "verify",
    "verify_consistency",
    "verify_device_certificate",
    "verify_inclusion",
    "verify_logbook",
]
