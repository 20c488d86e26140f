"""KMS encryption of a Session Manager data channel, as the plugin's ``src/encryption`` and
the agent's ``agent/session/crypto`` do it.

The client asks KMS for a 64-byte data key (``kms:GenerateDataKey``, encryption context
``aws:ssm:SessionId`` and ``aws:ssm:TargetId``) and hands the agent its encrypted form in the
handshake; the agent decrypts it with ``kms:Decrypt`` and the same context. The agent
encrypts with the key's first half and the client with its second half; each decrypts with
the other's. Every encrypted payload is a 12-byte random nonce followed by the AES-256-GCM
ciphertext and tag, with no associated data. Only Output payloads are encrypted (both
ways; StdErr and ExitCode too from the agent), so sizes, flags and the handshake itself go
in clear.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Tuple

NONCE_SIZE = 12
DATA_KEY_BYTES = 64  # the plugin's KMSKeySizeInBytes
CHALLENGE_BYTES = 64  # what the agent encrypts for the client to prove it has the key
SESSION_ID_CONTEXT = "aws:ssm:SessionId"
TARGET_ID_CONTEXT = "aws:ssm:TargetId"

# (key id, encryption context) -> (CiphertextBlob, Plaintext): kms:GenerateDataKey
GenerateDataKey = Callable[[str, Dict[str, str]], Tuple[bytes, bytes]]
# (CiphertextBlob, encryption context) -> Plaintext: kms:Decrypt
DecryptDataKey = Callable[[bytes, Dict[str, str]], bytes]


def kms_data_key(kms: Any, key_id: str, context: Dict[str, str]) -> Tuple[bytes, bytes]:
    """kms:GenerateDataKey as every session kind asks for it (attach, run, forward): a
    64-byte key (the plugin's ``KMSKeySizeInBytes``, split 32/32 by the agent's
    ``UpdateEncryptionKey``) for this session's context; (CiphertextBlob, Plaintext).
    ``kms`` is a boto3 KMS client."""
    answer = kms.generate_data_key(
        KeyId=key_id, NumberOfBytes=DATA_KEY_BYTES, EncryptionContext=context
    )
    return answer["CiphertextBlob"], answer["Plaintext"]


class EncryptionError(ValueError):
    """A payload that does not decrypt, or a data key of the wrong size."""


def encryption_context(session_id: str, target_id: str) -> Dict[str, str]:
    return {SESSION_ID_CONTEXT: session_id, TARGET_ID_CONTEXT: target_id}


class BlockCipher:
    """AES-GCM both ways with the two halves of one data key; ``agent`` says which side."""

    def __init__(self, data_key: bytes, agent: bool) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if len(data_key) != DATA_KEY_BYTES:
            raise EncryptionError(f"a data key is {DATA_KEY_BYTES} bytes, not {len(data_key)}")
        half = len(data_key) // 2
        first, second = data_key[:half], data_key[half:]
        outgoing, incoming = (first, second) if agent else (second, first)
        self._encrypt = AESGCM(outgoing)
        self._decrypt = AESGCM(incoming)

    def encrypt(self, plain: bytes) -> bytes:
        nonce = os.urandom(NONCE_SIZE)
        return nonce + self._encrypt.encrypt(nonce, plain, None)

    def decrypt(self, data: bytes) -> bytes:
        from cryptography.exceptions import InvalidTag

        if len(data) < NONCE_SIZE + 16:
            raise EncryptionError("an encrypted payload is at least a nonce and a tag")
        try:
            return self._decrypt.decrypt(data[:NONCE_SIZE], data[NONCE_SIZE:], None)
        except InvalidTag:
            raise EncryptionError("a payload did not decrypt with the session's key") from None
