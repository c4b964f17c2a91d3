"""Encryption of secret datastore values, in StackStorm's format.

StackStorm (``st2common/util/crypto.py``, 3.x) encrypts values set with ``st2 key set --encrypt``
with the AES key in ``/etc/st2/keys/datastore_key.json`` (``[keyvalue] encryption_key_path``),
a keyczar-compatible JSON file::

    {"hmacKey": {"hmacKeyString": "<urlsafe base64, no padding>", "size": 256},
     "aesKeyString": "<urlsafe base64, no padding>", "mode": "CBC", "size": 256}

and stores the ciphertext as the upper-case hex of
``header (5 bytes, unused) | IV (16 bytes) | AES-CBC(PKCS#7-padded UTF-8 plaintext) |
HMAC-SHA1(header | IV | ciphertext) (20 bytes)``.

packrunner uses the same key file format and the same ciphertext format, so a key file and the
encrypted values (``st2 key list --json`` / ``st2 key load``) can be moved between StackStorm and
packrunner (``packrunner/tests/test_crypto.py`` decrypts a value encrypted by StackStorm's code).
Why this and not Fernet (which StackStorm's own module names as the better recipe): the scheme is
authenticated all the same - encrypt-then-MAC with independent keys, the MAC over header, IV and
ciphertext, checked in constant time before anything is decrypted (``cryptography``'s
``HMAC.verify``), so a changed ciphertext or a wrong key is refused, never decrypted to garbage;
HMAC-SHA1 is not weakened by SHA-1's collision attacks. Compatibility with StackStorm is worth
more here than Fernet's simpler API. Unlike StackStorm's unpadding, the PKCS#7 padding is
checked (``cryptography``'s ``PKCS7`` unpadder).

Only primitives come from ``cryptography`` (AES, CBC, HMAC, PKCS7); this module only assembles
StackStorm's byte layout, which no library provides.
"""

import base64
import binascii
import json
import logging
import os
import stat

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .errors import PackrunnerError

__all__ = ["DatastoreKey", "DatastoreKeyError", "DecryptionError", "encrypt", "decrypt", "load_key",
           "create_key", "is_ciphertext"]

LOG = logging.getLogger("packrunner.datastore")

#: keyczar's header: 5 bytes (version + key hash) that StackStorm writes as b"00000" and ignores
_HEADER = b"00000"
_IV_SIZE = 16
_MAC_SIZE = 20  # HMAC-SHA1
#: key sizes in bits StackStorm accepts (MINIMUM_AES_KEY_SIZE 128); it generates 256
_AES_SIZES = (128, 192, 256)


class DatastoreKeyError(PackrunnerError):
    """The datastore key file is missing, unreadable or malformed (the message names the file
    and says how to fix it)."""


class DecryptionError(PackrunnerError, ValueError):
    """A stored value could not be decrypted: not ciphertext, or encrypted with another key
    (HMAC mismatch). Never contains the value."""


def _b64ws_decode(text):
    """keyczar's web-safe base64 without padding -> bytes."""
    text = "".join(str(text).split())
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64ws_encode(data):
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


class DatastoreKey:
    """An AES key with its HMAC key, as in StackStorm's ``AESKey``.

    Args:
        aes_key: AES key bytes (16, 24 or 32).
        hmac_key: HMAC-SHA1 key bytes.

    Attributes:
        path: the file it was read from (or written to), or None.
    """

    def __init__(self, aes_key, hmac_key, path=None):
        if len(aes_key) * 8 not in _AES_SIZES:
            raise ValueError("AES key must be 128, 192 or 256 bits, not %d" % (len(aes_key) * 8))
        if len(hmac_key) < 16:
            raise ValueError("HMAC key must be at least 128 bits")
        self.aes_key = bytes(aes_key)
        self.hmac_key = bytes(hmac_key)
        self.path = path

    @classmethod
    def generate(cls, size=256):
        """A new random key (``os.urandom``) of ``size`` bits, with an HMAC key of the same
        size (as StackStorm's ``AESKey.generate``)."""
        return cls(os.urandom(size // 8), os.urandom(size // 8))

    def to_json(self):
        """The keyczar JSON text of the key (StackStorm's ``AESKey.to_json``)."""
        return json.dumps({
            "hmacKey": {"hmacKeyString": _b64ws_encode(self.hmac_key), "size": len(self.hmac_key) * 8},
            "aesKeyString": _b64ws_encode(self.aes_key), "mode": "CBC", "size": len(self.aes_key) * 8})

    def __repr__(self):  # never the key material
        return "DatastoreKey(size=%d, path=%r)" % (len(self.aes_key) * 8, self.path)


def load_key(path):
    """Read a datastore key file (StackStorm's ``datastore_key.json`` format).

    A file readable or writable by group or others is tightened to 0600 (logged at WARNING)
    when this process owns it.

    Args:
        path: the key file.

    Returns:
        :class:`DatastoreKey`.

    Raises:
        DatastoreKeyError: missing, unreadable, not JSON, or without the keyczar fields,
            naming the file.
    """
    try:
        with open(path, "r", encoding="utf-8") as f:
            tighten_mode(path, f.fileno(), 0o600, "datastore key file")
            text = f.read()
    except FileNotFoundError as e:
        raise DatastoreKeyError(
            "datastore key file %s does not exist: the secret values were encrypted with a key file that is "
            "gone; restore it (or point --datastore-key / $PACKRUNNER_DATASTORE_KEY at it), or set the secret "
            "keys again with 'key set NAME VALUE --encrypt'" % path) from e
    except OSError as e:
        raise DatastoreKeyError("cannot read datastore key file %s: %s" % (path, e.strerror)) from e
    try:
        data = json.loads(text)
        if str(data["mode"]).upper() != "CBC":
            raise ValueError("mode %r is not CBC" % data["mode"])
        return DatastoreKey(_b64ws_decode(data["aesKeyString"]), _b64ws_decode(data["hmacKey"]["hmacKeyString"]),
                            path=path)
    except (ValueError, KeyError, TypeError, binascii.Error) as e:
        raise DatastoreKeyError(
            "datastore key file %s is not a StackStorm/keyczar AES key (JSON with aesKeyString, "
            "hmacKey.hmacKeyString, mode CBC, size): %s"
            % (path, "missing field %s" % e if isinstance(e, KeyError) else e)) from e


def create_key(path):
    """Create a new key file at ``path`` with mode 0600 from the start (``os.open`` with
    ``O_CREAT | O_EXCL``, so no other user can open it in between), its directory 0700 if it has
    to be created. If the file appeared meanwhile (another process), that one is read.

    Returns:
        :class:`DatastoreKey`.

    Raises:
        DatastoreKeyError: the file cannot be written.
    """
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        key = DatastoreKey.generate()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_key(path)
    except OSError as e:
        raise DatastoreKeyError("cannot create datastore key file %s: %s" % (path, e.strerror)) from e
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(key.to_json())
        f.flush()
        os.fsync(f.fileno())
    key.path = path
    LOG.info("datastore: created the datastore key file %s (mode 0600, AES-256 + HMAC-SHA1, StackStorm's "
             "format); keep it: secret values cannot be read without it", path)
    return key


def tighten_mode(path, fd_or_path, mode, what):
    """Remove permission bits beyond ``mode`` from a file or directory this process owns, with a
    WARNING naming it. Returns True when the mode was changed.

    Args:
        path: the name to log.
        fd_or_path: an open file descriptor or the path.
        mode: the widest allowed mode (e.g. 0o600, 0o700).
        what: what the file is, for the log line.
    """
    st = os.stat(fd_or_path)
    current = stat.S_IMODE(st.st_mode)
    if current & ~mode == 0 or st.st_uid != os.geteuid():
        return False
    if isinstance(fd_or_path, int):
        os.fchmod(fd_or_path, current & mode)
    else:
        os.chmod(fd_or_path, current & mode)
    LOG.warning("%s %s was mode %04o (readable by other users): changed to %04o", what, path, current,
                current & mode)
    return True


def encrypt(key, plaintext):
    """Encrypt a string as StackStorm's ``symmetric_encrypt`` does.

    Args:
        key: :class:`DatastoreKey`.
        plaintext: str (encoded as UTF-8).

    Returns:
        the ciphertext as upper-case hex (str), different on every call (random IV).
    """
    padder = padding.PKCS7(128).padder()
    data = padder.update(str(plaintext).encode("utf-8")) + padder.finalize()
    iv = os.urandom(_IV_SIZE)
    encryptor = Cipher(algorithms.AES(key.aes_key), modes.CBC(iv)).encryptor()
    message = _HEADER + iv + encryptor.update(data) + encryptor.finalize()
    mac = hmac.HMAC(key.hmac_key, hashes.SHA1())
    mac.update(message)
    return binascii.hexlify(message + mac.finalize()).upper().decode("ascii")


def is_ciphertext(value):
    """True when ``value`` has the shape of :func:`encrypt`'s output (hex, long enough, whole
    AES blocks). A plain secret (e.g. a JWT) never has it; used to find clear-text secret rows
    written by older packrunners."""
    if not isinstance(value, str) or len(value) % 2:
        return False
    body = len(value) // 2 - len(_HEADER) - _IV_SIZE - _MAC_SIZE
    if body <= 0 or body % 16:
        return False
    try:
        binascii.unhexlify(value)
    except (binascii.Error, ValueError):
        return False
    return True


def decrypt(key, ciphertext, name=None):
    """Decrypt :func:`encrypt`'s (or StackStorm's) ciphertext.

    Args:
        key: :class:`DatastoreKey`.
        ciphertext: the hex string.
        name: the datastore key name, for the error message.

    Returns:
        the plaintext (str).

    Raises:
        DecryptionError: not ciphertext, or the HMAC does not match (another key file, or the
            value was changed); the message names the key and the key file, never the value.
    """
    what = "the value of %s" % name if name else "the value"
    try:
        raw = binascii.unhexlify(ciphertext)
    except (binascii.Error, ValueError, TypeError) as e:
        raise DecryptionError("%s is not encrypted (not hex ciphertext)" % what) from e
    if len(raw) < len(_HEADER) + _IV_SIZE + 16 + _MAC_SIZE:
        raise DecryptionError("%s is not encrypted (too short for ciphertext)" % what)
    message, tag = raw[:-_MAC_SIZE], raw[-_MAC_SIZE:]
    mac = hmac.HMAC(key.hmac_key, hashes.SHA1())
    mac.update(message)
    try:
        mac.verify(tag)
    except InvalidSignature as e:
        raise DecryptionError(
            "cannot decrypt %s with the datastore key file %s: it was encrypted with another key, or changed "
            "(HMAC mismatch); use the key file it was encrypted with, or set it again with --encrypt"
            % (what, key.path or "(in memory)")) from e
    iv, body = message[len(_HEADER):len(_HEADER) + _IV_SIZE], message[len(_HEADER) + _IV_SIZE:]
    try:
        decryptor = Cipher(algorithms.AES(key.aes_key), modes.CBC(iv)).decryptor()
        padded = decryptor.update(body) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        return (unpadder.update(padded) + unpadder.finalize()).decode("utf-8")
    except ValueError as e:  # bad padding / length / UTF-8 despite a valid MAC: a foreign format
        raise DecryptionError("cannot decrypt %s: not StackStorm's ciphertext format" % what) from e
