"""Stand-in for mmcv's compiled ``mmcv._ext`` in cen_mm's managed environment.

``tools/env.sh`` installs this module and a ``.pth`` file that imports it into
the managed venv when that venv uses ``mmcv-lite`` (mmcv without compiled ops).
It is never imported by ``cen_mm`` itself and never installed into a user's own
environment.

``mmcv/ops/__init__.py`` loads ``mmcv._ext`` eagerly and mmseg / mmagic import
``mmcv.ops`` at module level, so without ``mmcv._ext`` ``import mmseg.models``
fails although no cen_mm model calls a compiled op. The finder below answers
only for ``mmcv._ext``; every op attribute of the stand-in raises
``NotImplementedError`` naming the op when it is *called*.
"""
import importlib.abc
import importlib.machinery
import sys
import types

MODULE_NAME = 'mmcv._ext'


class _MissingOp:
    """A compiled mmcv op that is not available in an mmcv-lite install."""

    def __init__(self, name: str) -> None:
        self.__name__ = self.__qualname__ = name

    def __call__(self, *args, **kwargs):
        raise NotImplementedError(
            f'mmcv op `{self.__name__}` needs the compiled mmcv, but this '
            'environment uses mmcv-lite (no compiled ops). Rebuild the managed '
            'environment with CEN_MM_MMCV=full (`CEN_MM_MMCV=full bash '
            'tools/env.sh`) or install the full `mmcv==2.1.0` yourself.')

    def __repr__(self) -> str:
        return f'<missing compiled mmcv op {self.__name__}>'


class _ExtStandIn(types.ModuleType):
    """Module whose every public attribute is a :class:`_MissingOp`."""

    is_cen_mm_standin = True

    @staticmethod
    def get_compiler_version() -> str:
        return 'none (mmcv-lite, cen_mm stand-in)'

    @staticmethod
    def get_compiling_cuda_version() -> str:
        return 'not available'

    def __getattr__(self, name: str):
        if name.startswith('__'):
            raise AttributeError(name)
        return _MissingOp(name)


class _Loader(importlib.abc.Loader):

    def create_module(self, spec):
        return _ExtStandIn(spec.name)

    def exec_module(self, module) -> None:
        module.__file__ = __file__


class _Finder(importlib.abc.MetaPathFinder):
    """Answers only for ``mmcv._ext``, and only if no real one exists."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != MODULE_NAME:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Loader())


def install() -> None:
    """Register the finder once, last, so a real compiled ``_ext`` wins."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())


install()
