"""Text for character-level language models (sgdlab/text.h): corpora read from
files or memory, their vocabulary, the char-rnn datasets, and generation."""
from __future__ import annotations

import ctypes as C
import os
from typing import Any, Iterable, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt

from . import _structs as st
from ._base import I32, Object, Owner, addr, free_fn, view
from ._lib import check, cstr, lib
from .data import Dataset
from .errors import InvalidArgumentError

PathLike = Union[str, 'os.PathLike[str]']
UNITS = {'utf8': 1, 'bytes': 2}
UNIT_NAMES = {v: k for k, v in UNITS.items()}
U32 = npt.NDArray[np.uint32]


def _unit(unit: str) -> int:
    if unit not in UNITS:
        raise InvalidArgumentError('unit=%r: must be one of %s' % (unit, ', '.join(UNITS)))
    return UNITS[unit]


def _text_options(unit: str, max_bytes: Optional[int]) -> st.TextOptions:
    o = st.TextOptions()
    lib.sgd_text_options_init(C.byref(o))
    o.unit = _unit(unit)
    if max_bytes is not None:
        o.max_bytes = max_bytes
    return o


def _as_bytes(text: Union[str, bytes, bytearray, memoryview]) -> bytes:
    return text.encode() if isinstance(text, str) else bytes(text)


class Vocab(Object):
    """A vocabulary (sgd_vocab): the symbols of a corpus (Unicode code points, or
    bytes), numbered from 0 in increasing order, so the same text always gives
    the same ids.

    ``Vocab(symbols, unit="utf8")`` makes one from its symbols (ints in strictly
    increasing order, or a str whose distinct characters are taken); a
    :class:`Text`'s :attr:`Text.vocab` belongs to the text (it keeps the text
    alive); :meth:`copy` gives one of its own. Two vocabularies compare equal
    when their unit and symbols are the same (sgd_vocab_equal())."""

    _what = 'vocabulary'

    def __init__(self, symbols: Union[str, bytes, Iterable[int]], unit: str = 'utf8') -> None:
        if isinstance(symbols, str):
            syms = sorted({ord(c) for c in symbols})
        elif isinstance(symbols, (bytes, bytearray)):
            syms = sorted(set(symbols))
            if unit == 'utf8':
                unit = 'bytes'
        else:
            syms = [int(s) for s in symbols]
        a = np.ascontiguousarray(syms, dtype=np.uint32)
        h = C.c_void_p()
        check(lib.sgd_vocab_new(C.byref(h), _unit(unit), a.ctypes.data_as(C.POINTER(C.c_uint32)), a.size, None))
        super().__init__(h.value or 0, free_fn('sgd_vocab_free'))

    @classmethod
    def _wrap(cls, ptr: int, owner_of: Optional[Owner] = None) -> 'Vocab':
        """A vocabulary the library made: its own (freed with it), or borrowed from @p owner_of."""
        self = cls.__new__(cls)
        Object.__init__(self, ptr, None if owner_of is not None else free_fn('sgd_vocab_free'))
        if owner_of is not None:
            self._own().borrow(owner_of)
        return self

    def copy(self) -> 'Vocab':
        """A vocabulary of its own with the same symbols (sgd_vocab_copy())."""
        h = C.c_void_p()
        check(lib.sgd_vocab_copy(C.byref(h), self._h, None))
        return Vocab._wrap(h.value or 0)

    def __len__(self) -> int:
        return int(lib.sgd_vocab_size(self._h))

    @property
    def size(self) -> int:
        """Number of symbols (the output width of a model of this vocabulary)."""
        return len(self)

    @property
    def unit(self) -> str:
        """utf8 (code points) or bytes."""
        return UNIT_NAMES.get(int(lib.sgd_vocab_unit(self._h)), 'unknown')

    @property
    def symbols(self) -> U32:
        """The symbols in id order (a copy): code points or byte values."""
        n = len(self)
        p = C.cast(lib.sgd_vocab_symbols(self._h), C.c_void_p).value or 0
        return np.array(view(self._own(), p, (n,), np.uint32, readonly=True))

    def __iter__(self) -> Any:
        """The symbols as str (utf8) or int (bytes), in id order."""
        syms = self.symbols.tolist()
        return iter([chr(s) for s in syms] if self.unit == 'utf8' else syms)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocab):
            return NotImplemented
        return bool(lib.sgd_vocab_equal(self._h, other._h))

    def __hash__(self) -> int:
        return hash((self.unit, self.symbols.tobytes()))

    def encode(self, text: Union[str, bytes, bytearray, memoryview]) -> I32:
        """Token ids of @p text (UTF-8 for a character vocabulary): raises
        NotFoundError naming a symbol not in the vocabulary and its offset."""
        b = _as_bytes(text)
        n = C.c_size_t()
        check(lib.sgd_vocab_encode(self._h, b, len(b), None, 0, C.byref(n)))
        out = np.empty(n.value, dtype=np.int32)
        check(lib.sgd_vocab_encode(self._h, b, len(b), out.ctypes.data_as(C.POINTER(C.c_int32)), out.size,
                                   C.byref(n)))
        return out

    def decode_bytes(self, ids: Any) -> bytes:
        """The bytes of token ids (raises InvalidArgumentError naming an id out of range)."""
        a = np.ascontiguousarray(ids, dtype=np.int32).reshape(-1)
        p = a.ctypes.data_as(C.POINTER(C.c_int32))
        n = C.c_size_t()
        check(lib.sgd_vocab_decode(self._h, p, a.size, None, 0, C.byref(n)))
        buf = C.create_string_buffer(n.value + 1)
        check(lib.sgd_vocab_decode(self._h, p, a.size, buf, n.value + 1, C.byref(n)))
        return buf.raw[:n.value]

    def decode(self, ids: Any) -> Union[str, bytes]:
        """Token ids to text: a str for a character vocabulary, bytes for a byte one."""
        b = self.decode_bytes(ids)
        return b.decode() if self.unit == 'utf8' else b

    def generate_bound(self, length: int) -> int:
        """Bytes of output generation may need for @p length symbols (sgd_text_generate_bound())."""
        return int(lib.sgd_text_generate_bound(self._h, length))

    def __repr__(self) -> str:
        return '<sgdlab.Vocab closed>' if self.closed else '<sgdlab.Vocab %d %s symbols>' % (len(self), self.unit)


class Text(Object):
    """A corpus (sgd_text): its tokens (int32 ids) and its :class:`Vocab`.

    :meth:`load` reads files (a directory stands for its text files),
    :meth:`from_bytes` / :meth:`from_str` take text in memory (copied). The
    unit is ``"utf8"`` (one token per code point; invalid UTF-8 is refused with
    the file and byte offset) or ``"bytes"``. :attr:`tokens` is a read-only
    zero-copy view; :meth:`datasets` cuts the corpus into the char-rnn layout."""

    _what = 'text'

    def __init__(self, ptr: int) -> None:
        super().__init__(ptr, free_fn('sgd_text_free'))

    @classmethod
    def load(cls, paths: Union[PathLike, Iterable[PathLike]], unit: str = 'utf8',
             max_bytes: Optional[int] = None) -> 'Text':
        """Reads files one after the other (sgd_text_load()); a directory stands for
        the regular files in it, in name order (links, hidden and .dat files left out)."""
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        names = [cstr(os.fspath(p)) for p in paths]
        arr = (C.c_char_p * max(len(names), 1))(*names)
        o = _text_options(unit, max_bytes)
        h = C.c_void_p()
        check(lib.sgd_text_load(C.byref(h), arr, len(names), C.byref(o), None))
        return cls(h.value or 0)

    @classmethod
    def from_bytes(cls, data: Union[bytes, bytearray, memoryview], unit: str = 'utf8',
                   max_bytes: Optional[int] = None) -> 'Text':
        """A corpus from bytes (copied; sgd_text_from_memory()); any input is safe."""
        b = bytes(data)
        o = _text_options(unit, max_bytes)
        h = C.c_void_p()
        check(lib.sgd_text_from_memory(C.byref(h), b if b else None, len(b), C.byref(o), None))
        return cls(h.value or 0)

    @classmethod
    def from_str(cls, text: str, max_bytes: Optional[int] = None) -> 'Text':
        """A character corpus from a str (as its UTF-8 bytes)."""
        return cls.from_bytes(text.encode(), 'utf8', max_bytes)

    def __len__(self) -> int:
        return int(lib.sgd_text_length(self._h))

    @property
    def tokens(self) -> I32:
        """The token ids: a read-only zero-copy view (keeps the corpus alive)."""
        p = C.cast(lib.sgd_text_tokens(self._h), C.c_void_p).value or 0
        return view(self._own(), p, (len(self),), np.int32, readonly=True)  # type: ignore[no-any-return]

    @property
    def vocab(self) -> Vocab:
        """The corpus's vocabulary (owned by the corpus, which it keeps alive)."""
        return Vocab._wrap(lib.sgd_text_vocab(self._h) or 0, self._own())

    @property
    def num_bytes(self) -> int:
        """Bytes of input the corpus was read from."""
        return int(lib.sgd_text_bytes(self._h))

    @property
    def num_files(self) -> int:
        """Files it was read from (1 for text from memory)."""
        return int(lib.sgd_text_num_files(self._h))

    def datasets(self, seq_len: int = 100, streams: int = 32, val_fraction: float = 0.05,
                 val_streams: int = 0) -> Tuple[Dataset, Optional[Dataset]]:
        """(train, val) datasets in the char-rnn layout (sgd_text_datasets()): the
        validation part is the end of the text (None when @p val_fraction is 0);
        row k * streams + b is sequence k of stream b, its T token ids as floats
        and the T next tokens as its labels. They own their memory."""
        o = st.TextSplitOptions()
        lib.sgd_text_split_options_init(C.byref(o))
        o.seq_len, o.streams, o.val_fraction, o.val_streams = seq_len, streams, val_fraction, val_streams
        tr, va = C.c_void_p(), C.c_void_p()
        check(lib.sgd_text_datasets(C.byref(tr), C.byref(va), self._h, C.byref(o)))
        train = Dataset._wrap(tr.value or 0, [])
        return train, (Dataset._wrap(va.value, []) if va.value else None)

    def __repr__(self) -> str:
        if self.closed:
            return '<sgdlab.Text closed>'
        return '<sgdlab.Text %d tokens from %d bytes, %d files, %d symbols>' % (
            len(self), self.num_bytes, self.num_files, int(lib.sgd_vocab_size(lib.sgd_text_vocab(self._h))))


def generate(model: Any, vocab: Union[Vocab, Text], prime: Optional[Union[str, bytes]] = None, length: int = 200,
             temperature: float = 1.0, seed: int = 0) -> Union[str, bytes]:
    """Samples @p length symbols from a language model (sgd_text_generate()), one at
    a time, at @p temperature (0: always the most likely), reproducibly for @p seed:
    the model reads @p prime first (or a newline if the vocabulary has one), from
    a zero state, in evaluation mode. Afterwards the model is as it was (sequence
    length, carried state, mode, parameters). Returns the text without the prime:
    a str for a character vocabulary, bytes for a byte one."""
    v = vocab.vocab if isinstance(vocab, Text) else vocab
    o = st.GenerateOptions()
    lib.sgd_generate_options_init(C.byref(o))
    pb = None if prime is None else _as_bytes(prime)
    o.prime = pb
    o.length, o.temperature, o.seed = length, temperature, seed
    cap = max(v.generate_bound(length), 1)
    buf = C.create_string_buffer(cap)
    n = C.c_size_t()
    check(lib.sgd_text_generate(model._h, v._h, C.byref(o), buf, cap, C.byref(n)))
    raw = buf.raw[:n.value]
    return raw.decode() if v.unit == 'utf8' else raw


_ = addr
