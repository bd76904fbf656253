"""A pickle reader that builds only what checkpoints hold — containers, numbers, strings, numpy arrays
and the tensors the caller's globals table rebuilds — and refuses every other global, before anything
from the file runs (the rule of torch.load(weights_only=True), written opcode by opcode).

Globals are looked up in a table of pyfastnn's own functions and markers, never imported: a pickle
that names os.system, builtins.eval or a class from any other module stops with an
UnsafeCheckpointError naming that global. Only the table's functions are ever called (REDUCE,
NEWOBJ); BUILD only fills numpy arrays and dtypes this reader made and OrderedDict attributes.
"""
from __future__ import annotations

import codecs
import collections
import io
import struct

import numpy as np

from .errors import CheckpointError, UnsafeCheckpointError

__all__ = ["Global", "Marker", "BASE_GLOBALS", "RestrictedUnpickler", "refusal"]


class Global:
    """A function a pickle may call by name: `fn` for REDUCE, `newobj` for NEWOBJ (cls.__new__)."""
    __slots__ = ("qualname", "fn", "newobj")

    def __init__(self, qualname, fn, newobj=None):
        self.qualname, self.fn, self.newobj = qualname, fn, newobj

    def __repr__(self):
        return f"<global {self.qualname}>"


class Marker:
    """A class named in a pickle only as data (torch.FloatStorage, numpy.ndarray): never called."""
    __slots__ = ("qualname", "payload")

    def __init__(self, qualname, payload=None):
        self.qualname, self.payload = qualname, payload

    def __repr__(self):
        return self.qualname


class _Dummy:
    """What a dry run pushes for globals and calls it does not evaluate."""
    __slots__ = ()


_DUMMY = _Dummy()
NDARRAY = Marker("numpy.ndarray")

# Python 2 module names, as pickle's fix_imports maps them
_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg", "_codecs": "_codecs"}


def refusal(source, qualname):
    return UnsafeCheckpointError(
        f"{source}: refused to load the global '{qualname}': a weights-only load builds tensors, numpy "
        f"arrays and plain containers, nothing else, and nothing from the file was run. If you trust "
        f"the file, load it with weights_only=False (that unpickles it fully and runs code from it).")


# ----------------------------------------------------------------------- the base table
def _ordered_dict(*args):
    if len(args) > 1 or (args and not isinstance(args[0], (list, tuple, dict))):
        raise CheckpointError("collections.OrderedDict takes one list of pairs")
    return collections.OrderedDict(*args)


def _counter(*args):
    if len(args) > 1 or (args and not isinstance(args[0], (list, tuple, dict))):
        raise CheckpointError("collections.Counter takes one list or dict")
    return collections.Counter(*args)


def _iterable_of_values(name, make):
    def build(*args):
        if len(args) > 1 or (args and not isinstance(args[0], (list, tuple, set, frozenset))):
            raise CheckpointError(f"builtins.{name} takes one list")
        return make(*args)
    return build


def _complex(*args):
    if len(args) > 2 or not all(isinstance(a, (int, float, str)) for a in args):
        raise CheckpointError("builtins.complex takes two numbers")
    return complex(*args)


def _bytes_like(make):
    def build(*args):
        if len(args) > 2 or (args and not isinstance(args[0], (bytes, bytearray, str))):
            raise CheckpointError(f"builtins.{make.__name__} takes bytes")   # never a size to allocate
        if args and isinstance(args[0], str):
            return make(args[0], *(args[1:] or ("latin1",)))
        return make(*args)
    return build


def _codecs_encode(obj, encoding="utf-8", errors="strict"):
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8", "ascii"):
        raise CheckpointError("_codecs.encode is only used for bytes (a str and 'latin1')")
    return codecs.encode(obj, encoding, errors)


def _np_dtype(obj, align=False, copy=True):
    # numpy pickles a dtype as its type code ('f4', 'V16'); fields come through BUILD, from dtypes
    # built here too, so nothing deeper (a nested spec numpy would parse recursively) is needed
    if not isinstance(obj, (str, bytes)):
        raise CheckpointError(f"numpy.dtype of a {type(obj).__name__}")
    return np.dtype(obj, bool(align), True)      # a fresh object: BUILD must never touch numpy's own


def _np_reconstruct(subtype, shape, typecode):
    if subtype is not NDARRAY:
        raise CheckpointError(f"numpy's _reconstruct of {subtype!r} (only numpy.ndarray)")
    return np.empty((0,), np.uint8)     # BUILD sets the real dtype, shape and data


def _np_frombuffer(buf, dtype, shape, order):
    if not isinstance(buf, (bytes, bytearray)) or not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise CheckpointError("numpy's _frombuffer takes bytes and a plain dtype")
    arr = np.frombuffer(buf, dtype=dtype)
    if not arr.flags.writeable:
        arr = arr.copy()
    return arr.reshape(shape, order=order)


def _np_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype):
        raise CheckpointError("numpy's scalar takes a dtype")
    if dtype.hasobject:
        return data                     # an object scalar is the object, already built by this reader
    if not isinstance(data, (bytes, bytearray)) or len(data) != dtype.itemsize:
        raise CheckpointError(f"numpy scalar of {dtype} with {len(data or b'')} bytes")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _base_globals():
    table = {}

    def add(qualname, fn, newobj=None):
        table[qualname] = Global(qualname, fn, newobj)

    add("collections.OrderedDict", _ordered_dict, _ordered_dict)
    add("collections.Counter", _counter, _counter)
    add("builtins.set", _iterable_of_values("set", set), _iterable_of_values("set", set))
    add("builtins.frozenset", _iterable_of_values("frozenset", frozenset))
    add("builtins.complex", _complex)
    add("builtins.bytes", _bytes_like(bytes))
    add("builtins.bytearray", _bytes_like(bytearray))
    add("_codecs.encode", _codecs_encode)
    add("numpy.dtype", _np_dtype)
    for mod in ("numpy.core", "numpy._core"):
        add(f"{mod}.multiarray._reconstruct", _np_reconstruct)
        add(f"{mod}.multiarray.scalar", _np_scalar)
        add(f"{mod}.numeric._frombuffer", _np_frombuffer)
    table["numpy.ndarray"] = NDARRAY
    return table


BASE_GLOBALS = _base_globals()


# ----------------------------------------------------------------------- the reader
_OPS = {}


def _op(code):
    def register(fn):
        _OPS[code[0]] = fn
        return fn
    return register


class RestrictedUnpickler:
    """Reads one pickle from a binary file object.

    globals: qualified name -> Global or a value pushed as is (a Marker, a dtype).
    persistent_load(pid) -> object, or None to refuse persistent ids.
    dry_run: evaluate no call at all (REDUCE/NEWOBJ push placeholders): used to find the storages a
      legacy torch file declares before its data has been read. With allow_unknown, unknown globals
      become placeholders too (the full unpickler reads the file afterwards).
    """

    def __init__(self, fp, *, source, globals=None, persistent_load=None, size=None, dry_run=False,
                 allow_unknown=False):
        self.fp, self.source = fp, source
        self.globals = BASE_GLOBALS if globals is None else globals
        self.persistent_load = persistent_load
        self.dry_run, self.allow_unknown = dry_run, allow_unknown
        if size is None:
            here = fp.tell()
            size = fp.seek(0, io.SEEK_END)
            fp.seek(here)
        self.end = size
        self._made = {}         # id -> numpy objects this reader made (BUILD may fill only those)
        self._depths = {}       # id -> nesting depth of the tuples this reader made

    # ------------------------------------------------------------------ bytes
    def _read(self, n):
        if n < 0 or n > self.end - self.fp.tell():
            raise CheckpointError(f"{self.source}: the file is truncated (a pickle opcode needs {n} more "
                                  f"bytes than the file holds)")
        data = self.fp.read(n)
        if len(data) != n:
            raise CheckpointError(f"{self.source}: the file is truncated")
        return data

    def _readline(self):
        line = self.fp.readline()
        if not line.endswith(b"\n"):
            raise CheckpointError(f"{self.source}: the file is truncated (a pickle text field has no end)")
        return line[:-1]

    # ------------------------------------------------------------------ driver
    def load(self):
        self.stack, self.metastack, self.memo = [], [], {}
        try:
            while True:
                key = self.fp.read(1)
                if not key:
                    raise CheckpointError(f"{self.source}: the file is truncated (the pickle has no end)")
                op = _OPS.get(key[0])
                if op is None:
                    raise CheckpointError(f"{self.source}: unsupported or invalid pickle opcode {key!r} "
                                          f"at byte {self.fp.tell() - 1}")
                if op(self) is _STOP:
                    if len(self.stack) != 1 or self.metastack:
                        raise CheckpointError(f"{self.source}: corrupted pickle (a MARK was left open)")
                    return self.stack.pop()
        except (CheckpointError, UnsafeCheckpointError):
            raise
        except (IndexError, KeyError, TypeError, ValueError, AttributeError, struct.error,
                UnicodeDecodeError, OverflowError, RecursionError, SystemError) as exc:
            raise CheckpointError(f"{self.source}: corrupted pickle ({type(exc).__name__}: {exc})") from None

    def _pop_mark(self):
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def _tuple_of(self, items):
        """A tuple, refusing deep nesting: hashing a tuple nested a million deep overflows the C stack."""
        depth = 1 + max((self._depths.get(id(i), 1) for i in items if type(i) is tuple), default=0)
        if depth > _MAX_TUPLE_DEPTH:
            raise CheckpointError(f"{self.source}: corrupted pickle (tuples nested over {_MAX_TUPLE_DEPTH} deep)")
        t = tuple(items)
        if depth > 1:
            self._depths[id(t)] = depth
            self._made[id(t)] = t       # (keeps the id valid)
        return t

    def _made_here(self, obj):
        self._made[id(obj)] = obj
        return obj

    def _find(self, module, name):
        module = _PY2_MODULES.get(module, module)
        qualname = f"{module}.{name}"
        if qualname in self.globals:
            return self.globals[qualname]
        if self.allow_unknown:
            return _DUMMY
        raise refusal(self.source, qualname)

    def _call(self, func, args, opname):
        if self.dry_run:
            return _DUMMY
        if type(func) is not Global or (opname == "NEWOBJ" and func.newobj is None):
            what = func.qualname if isinstance(func, (Global, Marker)) else type(func).__name__
            raise UnsafeCheckpointError(f"{self.source}: refused {opname} on '{what}' (not a function a "
                                        f"checkpoint calls); nothing from the file was run")
        if type(args) is not tuple:
            raise CheckpointError(f"{self.source}: corrupted pickle ({opname} arguments are not a tuple)")
        try:
            result = (func.newobj if opname == "NEWOBJ" else func.fn)(*args)
        except (CheckpointError, UnsafeCheckpointError) as exc:
            if str(exc).startswith(self.source):
                raise
            raise type(exc)(f"{self.source}: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{self.source}: invalid arguments to {func.qualname} ({exc})") from None
        if isinstance(result, (np.ndarray, np.dtype)):
            self._made_here(result)
        return result


_STOP = object()
_MAX_TUPLE_DEPTH = 256


def _unpack(fmt):
    s = struct.Struct(fmt)
    return lambda self: s.unpack(self._read(s.size))[0]


_u1, _u2, _u4, _u8, _i4 = _unpack("<B"), _unpack("<H"), _unpack("<I"), _unpack("<Q"), _unpack("<i")
_f8 = _unpack(">d")


def _text(self, data):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data                     # Python 2 byte strings that are not text stay bytes


@_op(b"\x80")
def _proto(self):
    proto = _u1(self)
    if proto > 5:
        raise CheckpointError(f"{self.source}: unsupported pickle protocol {proto}")


@_op(b"\x95")
def _frame(self):
    _u8(self)


@_op(b".")
def _stop(self):
    return _STOP


@_op(b"(")
def _mark(self):
    self.metastack.append(self.stack)
    self.stack = []


@_op(b"0")
def _pop(self):
    if self.stack:
        self.stack.pop()
    else:
        self._pop_mark()


@_op(b"1")
def _pop_mark_op(self):
    self._pop_mark()


@_op(b"2")
def _dup(self):
    self.stack.append(self.stack[-1])


@_op(b"N")
def _none(self):
    self.stack.append(None)


@_op(b"\x88")
def _true(self):
    self.stack.append(True)


@_op(b"\x89")
def _false(self):
    self.stack.append(False)


@_op(b"I")
def _int(self):
    line = self._readline()
    self.stack.append(True if line == b"01" else False if line == b"00" else int(line))


@_op(b"L")
def _long(self):
    self.stack.append(int(self._readline().rstrip(b"L")))


@_op(b"J")
def _binint(self):
    self.stack.append(_i4(self))


@_op(b"K")
def _binint1(self):
    self.stack.append(_u1(self))


@_op(b"M")
def _binint2(self):
    self.stack.append(_u2(self))


@_op(b"\x8a")
def _long1(self):
    self.stack.append(int.from_bytes(self._read(_u1(self)), "little", signed=True))


@_op(b"\x8b")
def _long4(self):
    n = _i4(self)
    self.stack.append(int.from_bytes(self._read(n), "little", signed=True))


@_op(b"F")
def _float(self):
    self.stack.append(float(self._readline()))


@_op(b"G")
def _binfloat(self):
    self.stack.append(_f8(self))


@_op(b"S")
def _string(self):
    data = self._readline()
    if len(data) < 2 or data[:1] != data[-1:] or data[:1] not in (b"'", b'"'):
        raise CheckpointError(f"{self.source}: corrupted pickle (an unquoted STRING)")
    self.stack.append(_text(self, codecs.escape_decode(data[1:-1])[0]))


@_op(b"T")
def _binstring(self):
    self.stack.append(_text(self, self._read(_i4(self))))


@_op(b"U")
def _short_binstring(self):
    self.stack.append(_text(self, self._read(_u1(self))))


@_op(b"V")
def _unicode(self):
    self.stack.append(str(self._readline(), "raw-unicode-escape"))


@_op(b"X")
def _binunicode(self):
    self.stack.append(str(self._read(_u4(self)), "utf-8", "surrogatepass"))


@_op(b"\x8c")
def _short_binunicode(self):
    self.stack.append(str(self._read(_u1(self)), "utf-8", "surrogatepass"))


@_op(b"\x8d")
def _binunicode8(self):
    self.stack.append(str(self._read(_u8(self)), "utf-8", "surrogatepass"))


@_op(b"B")
def _binbytes(self):
    self.stack.append(self._read(_u4(self)))


@_op(b"C")
def _short_binbytes(self):
    self.stack.append(self._read(_u1(self)))


@_op(b"\x8e")
def _binbytes8(self):
    self.stack.append(self._read(_u8(self)))


@_op(b"\x96")
def _bytearray8(self):
    self.stack.append(bytearray(self._read(_u8(self))))


@_op(b"\x98")
def _readonly_buffer(self):
    if isinstance(self.stack[-1], bytearray):
        self.stack[-1] = bytes(self.stack[-1])


@_op(b")")
def _empty_tuple(self):
    self.stack.append(())


@_op(b"t")
def _tuple(self):
    items = self._pop_mark()        # (before self.stack is read: _pop_mark replaces it)
    self.stack.append(self._tuple_of(items))


@_op(b"\x85")
def _tuple1(self):
    self.stack[-1] = self._tuple_of(self.stack[-1:])


@_op(b"\x86")
def _tuple2(self):
    self.stack[-2:] = [self._tuple_of(self.stack[-2:])]


@_op(b"\x87")
def _tuple3(self):
    self.stack[-3:] = [self._tuple_of(self.stack[-3:])]


@_op(b"]")
def _empty_list(self):
    self.stack.append([])


@_op(b"l")
def _list(self):
    items = self._pop_mark()
    self.stack.append(items)


@_op(b"}")
def _empty_dict(self):
    self.stack.append({})


@_op(b"d")
def _dict(self):
    items = self._pop_mark()
    self.stack.append({items[i]: items[i + 1] for i in range(0, len(items) - 1, 2)})


@_op(b"\x8f")
def _empty_set(self):
    self.stack.append(set())


@_op(b"\x91")
def _frozenset(self):
    items = self._pop_mark()
    self.stack.append(frozenset(items))


def _target(self, kinds, opname):
    target = self.stack[-1]
    if type(target) not in kinds:
        if self.dry_run and type(target) is _Dummy:
            return None
        raise UnsafeCheckpointError(f"{self.source}: refused {opname} on a {type(target).__name__} "
                                    f"(a checkpoint only fills lists, dicts and sets)")
    return target


_DICTS = (dict, collections.OrderedDict, collections.Counter)


@_op(b"a")
def _append(self):
    item = self.stack.pop()
    target = _target(self, (list,), "APPEND")
    if target is not None:
        target.append(item)


@_op(b"e")
def _appends(self):
    items = self._pop_mark()
    target = _target(self, (list,), "APPENDS")
    if target is not None:
        target.extend(items)


@_op(b"s")
def _setitem(self):
    value, key = self.stack.pop(), self.stack.pop()
    target = _target(self, _DICTS, "SETITEM")
    if target is not None:
        target[key] = value


@_op(b"u")
def _setitems(self):
    items = self._pop_mark()
    target = _target(self, _DICTS, "SETITEMS")
    if target is not None:
        for i in range(0, len(items) - 1, 2):
            target[items[i]] = items[i + 1]


@_op(b"\x90")
def _additems(self):
    items = self._pop_mark()
    target = _target(self, (set,), "ADDITEMS")
    if target is not None:
        target.update(items)


# memo
@_op(b"g")
def _get(self):
    self.stack.append(self.memo[int(self._readline())])


@_op(b"h")
def _binget(self):
    self.stack.append(self.memo[_u1(self)])


@_op(b"j")
def _long_binget(self):
    self.stack.append(self.memo[_u4(self)])


@_op(b"p")
def _put(self):
    self.memo[int(self._readline())] = self.stack[-1]


@_op(b"q")
def _binput(self):
    self.memo[_u1(self)] = self.stack[-1]


@_op(b"r")
def _long_binput(self):
    self.memo[_u4(self)] = self.stack[-1]


@_op(b"\x94")
def _memoize(self):
    self.memo[len(self.memo)] = self.stack[-1]


# globals, calls and persistent ids: the only opcodes that reach beyond plain data
@_op(b"c")
def _global(self):
    module = self._readline().decode("utf-8")
    name = self._readline().decode("utf-8")
    self.stack.append(self._find(module, name))


@_op(b"\x93")
def _stack_global(self):
    name, module = self.stack.pop(), self.stack.pop()
    if type(name) is not str or type(module) is not str:
        raise CheckpointError(f"{self.source}: corrupted pickle (STACK_GLOBAL of non-strings)")
    self.stack.append(self._find(module, name))


@_op(b"R")
def _reduce(self):
    args = self.stack.pop()
    self.stack[-1] = self._call(self.stack[-1], args, "REDUCE")


@_op(b"\x81")
def _newobj(self):
    args = self.stack.pop()
    self.stack[-1] = self._call(self.stack[-1], args, "NEWOBJ")


@_op(b"b")
def _build(self):
    state = self.stack.pop()
    inst = self.stack[-1]
    if self.dry_run and type(inst) is _Dummy:
        return
    if type(inst) in (collections.OrderedDict, collections.Counter) and isinstance(state, dict):
        # torch's state dicts carry `_metadata` (module versions) as an attribute
        for k, v in state.items():
            if type(k) is not str or k.startswith("__"):
                raise UnsafeCheckpointError(f"{self.source}: refused BUILD of attribute {k!r} on an OrderedDict")
            inst.__dict__[k] = v
        return
    if isinstance(inst, (np.ndarray, np.dtype)) and self._made.get(id(inst)) is inst:
        valid = _array_state_ok(state) if isinstance(inst, np.ndarray) else _dtype_state_ok(state)
        if not valid:       # numpy's __setstate__ trusts its input more than a file deserves
            raise CheckpointError(f"{self.source}: corrupted numpy {type(inst).__name__} state in the pickle")
        inst.__setstate__(state)
        return
    raise UnsafeCheckpointError(f"{self.source}: refused BUILD on a {type(inst).__name__} (a checkpoint "
                                f"only fills numpy arrays and OrderedDicts); nothing from the file was run")


def _ints(t):
    return isinstance(t, tuple) and all(type(n) is int and n >= 0 for n in t)


def _array_state_ok(state):
    # (version, shape, dtype, is_fortran, data): data is bytes, or a list for object arrays
    if not (isinstance(state, tuple) and len(state) == 5 and type(state[0]) is int and _ints(state[1])
            and isinstance(state[2], np.dtype) and isinstance(state[3], (bool, int))):
        return False
    data = state[4]
    return isinstance(data, list) if state[2].hasobject else isinstance(data, (bytes, bytearray, str))


def _dtype_state_ok(state):
    # (version, byte order, subarray, names, fields, itemsize, alignment, flags[, metadata])
    if not (isinstance(state, tuple) and len(state) in (8, 9) and state[0] in (3, 4) and state[1] in "<>|="
            and all(type(v) is int for v in state[5:8])):
        return False
    subarray, names, fields = state[2:5]
    if subarray is not None and not (isinstance(subarray, tuple) and len(subarray) == 2
                                     and isinstance(subarray[0], np.dtype) and _ints(subarray[1])):
        return False
    if names is not None and not (isinstance(names, tuple) and all(type(n) is str for n in names)):
        return False
    if fields is not None and not (isinstance(fields, dict) and all(
            isinstance(v, tuple) and 2 <= len(v) <= 3 and isinstance(v[0], np.dtype) and type(v[1]) is int
            for v in fields.values())):
        return False
    return (names is None) == (fields is None) and (len(state) == 8 or state[8] is None or isinstance(state[8], dict))


def _persistent(self, pid):
    if self.persistent_load is None:
        raise CheckpointError(f"{self.source}: unexpected persistent id {pid!r} in the pickle")
    self.stack.append(self.persistent_load(pid))


@_op(b"P")
def _persid(self):
    _persistent(self, self._readline().decode("ascii"))


@_op(b"Q")
def _binpersid(self):
    _persistent(self, self.stack.pop())


def _refused_opcode(name, why):
    def op(self):
        raise UnsafeCheckpointError(f"{self.source}: refused pickle opcode {name} ({why}); nothing from "
                                    f"the file was run")
    return op


for _code, _name, _why in ((b"i", "INST", "builds an instance of an arbitrary class"),
                           (b"o", "OBJ", "builds an instance of an arbitrary class"),
                           (b"\x92", "NEWOBJ_EX", "builds an instance of an arbitrary class"),
                           (b"\x82", "EXT1", "looks up the copyreg extension registry"),
                           (b"\x83", "EXT2", "looks up the copyreg extension registry"),
                           (b"\x84", "EXT4", "looks up the copyreg extension registry"),
                           (b"\x97", "NEXT_BUFFER", "out-of-band buffers are not part of a file")):
    _OPS[_code[0]] = _refused_opcode(_name, _why)
