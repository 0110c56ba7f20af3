"""The errors a user can act on. The CLIs print their message as one line and exit 1; anything else
is a bug."""

from __future__ import annotations


class MusicidError(Exception):
    """A problem with what the user gave (a file, a folder, an option); the message names it and
    says what is wrong."""


class InputError(MusicidError):
    """Bad input that stops the job: a dataset root, a manifest, a checkpoint, an output folder."""


class AudioError(MusicidError):
    """An audio file that cannot be used: missing, unreadable, truncated, or holding NaN/inf
    samples."""
