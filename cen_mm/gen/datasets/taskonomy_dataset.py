# Copyright (c) cen_mm contributors. All rights reserved.
import os.path as osp
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mmagic.registry import DATASETS
from mmengine import fileio
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from cen_mm.datasets.taskonomy_domains import TASKONOMY_DOMAINS

from ..flows import parse_flows

__all__ = ['TaskonomyDataset', 'expand_domain_placeholders']

_VIEW_PATTERN = re.compile(r'point_(\d+)_view_(\d+)')
_FILE_PATTERN = re.compile(r'^(point_\d+_view_\d+)_domain_(.+)\.png$')


def _unique(items: Sequence[str]) -> List[str]:
    return list(dict.fromkeys(items))


def _view_sort_key(view: str) -> Tuple[int, int]:
    point, index = _VIEW_PATTERN.fullmatch(view).groups()
    return int(point), int(index)


def expand_domain_placeholders(cfg: Any, placeholders: Dict[str, list]) -> Any:
    """Replace domain placeholders in (nested) transform configs.

    A value equal to a placeholder (e.g. ``'{img_keys}'``) becomes its list;
    a placeholder inside a list is spliced into it. Other values are kept.
    """
    if isinstance(cfg, str):
        return list(placeholders[cfg]) if cfg in placeholders else cfg
    if isinstance(cfg, dict):
        return type(cfg)({
            k: expand_domain_placeholders(v, placeholders)
            for k, v in cfg.items()
        })
    if isinstance(cfg, (list, tuple)):
        out = []
        for item in cfg:
            if isinstance(item, str) and item in placeholders:
                out.extend(placeholders[item])
            else:
                out.append(expand_domain_placeholders(item, placeholders))
        return type(cfg)(out) if isinstance(cfg, list) else tuple(out)
    return cfg


@DATASETS.register_module()
class TaskonomyDataset(BaseDataset):
    """Multi-domain Taskonomy views for image-to-image translation.

    Layout (one folder per domain, the ``point_{P}_view_{V}`` prefix pairs
    the domains of one view)::

        data_root/
          rgb/point_0_view_3_domain_rgb.png
          reshading/point_0_view_3_domain_reshading.png
          edge_texture/point_0_view_3_domain_edge_texture.png
          ...

    The optional split file (``ann_file``) lists one view per line, either as
    a view name (``point_0_view_3``) or in the official CEN line format
    ``{domain}/point_0_view_3_domain_{domain}.png`` (with the placeholder or
    any concrete domain name; only the view is used). Without a split file,
    the views are those found in the requested domain folders, sorted by
    point and view index.

    Each data info holds ``img_{domain}_path`` for every source and target
    domain, and ``view``. Any number of targets (``target_domains``) or
    flows (``flows``, e.g. the cycle of Table 6) can be declared; each
    domain is loaded once per view.

    Pipelines can stay domain-agnostic: before the pipeline is built, these
    placeholder strings in its transform configs are replaced (a placeholder
    inside a list is spliced):

    - ``'{domains}'``: source domains then the target domains (each once);
    - ``'{img_keys}'``: ``img_{domain}`` for each of them;
    - ``'{source_img_keys}'`` / ``'{target_img_keys}'``: the sources'
      (that are no target) / the targets' ``img_{domain}``;
      ``'{target_img_key}'``: the last target's;
    - ``'{meta_keys}'``: ``view``, ``img_{domain}_path``,
      ``img_{domain}_channel_order`` and ``ori_img_{domain}_shape``.

    So a config changes the task only through ``source_domains`` and
    ``target_domain``.

    Args:
        data_root (str): Root with one folder per domain.
        source_domains (Sequence[str], optional): Input domains, e.g.
            ``['reshading', 'edge_texture']``.
        target_domain (str, optional): Output domain (one target).
            Default: 'rgb'.
        target_domains (Sequence[str], optional): Several output domains
            (multitask); overrides ``target_domain``. Default: None.
        flows (Sequence[dict], optional): Translation flows
            ``dict(sources=[...], target='...')`` (cycle: a domain can be a
            source of one flow and the target of another); replaces
            ``source_domains`` / ``target_domains``. Default: None.
        ann_file (str): Split file, relative to ``data_root`` unless
            absolute; ``''`` scans the folders. Default: ''.
        on_missing (str): What to do with a view that lacks a file in some
            requested domain: ``'error'`` (raise, naming the view and the
            domain) or ``'skip'`` (drop it with a warning). Default: 'error'.
        domain_dirs (dict, optional): Folder per domain relative to
            ``data_root`` when it differs from the domain name.
            Default: None.
        backend_args (dict, optional): mmengine file backend arguments.
            Default: None.
        **kwargs: Other arguments of :class:`mmengine.dataset.BaseDataset`
            (``pipeline``, ``test_mode``, ``indices``, ...).
    """

    METAINFO = dict(domains=TASKONOMY_DOMAINS)

    def __init__(self,
                 data_root: str,
                 source_domains: Optional[Sequence[str]] = None,
                 target_domain: Optional[str] = 'rgb',
                 target_domains: Optional[Sequence[str]] = None,
                 flows: Optional[Sequence[dict]] = None,
                 ann_file: str = '',
                 on_missing: str = 'error',
                 domain_dirs: Optional[Dict[str, str]] = None,
                 backend_args: Optional[dict] = None,
                 **kwargs) -> None:
        name = type(self).__name__
        if on_missing not in ('error', 'skip'):
            raise ValueError("on_missing must be 'error' or 'skip', got "
                             f'{on_missing!r}')
        if flows is not None:
            if source_domains is not None or target_domains is not None:
                raise ValueError(f'{name}: give either flows or '
                                 'source_domains/target_domains, not both')
            self.flows = parse_flows(flows, name)
            source_domains = _unique(
                [s for f in self.flows for s in f['sources']])
            target_domains = _unique([f['target'] for f in self.flows])
        else:
            if isinstance(source_domains, str):
                source_domains = [source_domains]
            source_domains = list(source_domains or [])
            if len(source_domains) == 0:
                raise ValueError(f'{name} needs at least one source domain')
            if len(set(source_domains)) != len(source_domains):
                raise ValueError(
                    f'Duplicate source domains: {source_domains}')
            if target_domains is None:
                target_domains = [target_domain]
            target_domains = list(target_domains)
            if not target_domains or len(set(target_domains)) != len(
                    target_domains):
                raise ValueError(f'{name}: target_domains must be non-empty '
                                 f'and unique, got {target_domains}')
            for target in target_domains:
                if target in source_domains:
                    raise ValueError(f'target_domain "{target}" is also a '
                                     f'source domain ({source_domains})')
            self.flows = [
                dict(sources=list(source_domains), target=t)
                for t in target_domains
            ]
        self.source_domains = list(source_domains)
        self.target_domains = list(target_domains)
        self.target_domain = self.target_domains[-1]
        self.domains = _unique(self.source_domains + self.target_domains)
        known = set(TASKONOMY_DOMAINS) | set(domain_dirs or {})
        unknown = [d for d in self.domains if d not in known]
        if unknown:
            raise ValueError(
                f'{name}: unknown domains {unknown}; Taskonomy domains are '
                f'{list(TASKONOMY_DOMAINS)} (declare others in domain_dirs)')
        self.on_missing = on_missing
        self.domain_dirs = dict(domain_dirs or {})
        self.backend_args = backend_args
        if 'pipeline' in kwargs:
            kwargs['pipeline'] = expand_domain_placeholders(
                kwargs['pipeline'], self.placeholders)
        super().__init__(data_root=data_root, ann_file=ann_file, **kwargs)
        self._metainfo.update(
            source_domains=tuple(self.source_domains),
            target_domain=self.target_domain,
            target_domains=tuple(self.target_domains),
            flows=tuple((tuple(f['sources']), f['target'])
                        for f in self.flows))

    @property
    def placeholders(self) -> Dict[str, list]:
        """dict: Pipeline placeholders and their values for this task."""
        keys = [f'img_{d}' for d in self.domains]
        targets = [f'img_{d}' for d in self.target_domains]
        meta = ['view']
        for key in keys:
            meta += [f'{key}_path', f'{key}_channel_order', f'ori_{key}_shape']
        return {
            '{domains}': list(self.domains),
            '{img_keys}': keys,
            '{source_img_keys}': [
                k for k in keys if k not in targets
            ],
            '{target_img_key}': targets[-1:],
            '{target_img_keys}': targets,
            '{meta_keys}': meta,
        }

    def domain_file(self, view: str, domain: str) -> str:
        """Path of the file of ``view`` in ``domain``."""
        folder = self.domain_dirs.get(domain, domain)
        return osp.join(self.data_root, folder,
                        f'{view}_domain_{domain}.png')

    def _scan_domain(self, domain: str) -> List[str]:
        folder = osp.join(self.data_root, self.domain_dirs.get(domain, domain))
        if not fileio.isdir(folder, backend_args=self.backend_args):
            raise FileNotFoundError(
                f'TaskonomyDataset: no folder for domain "{domain}" at '
                f'{folder}')
        views = []
        for name in fileio.list_dir_or_file(
                folder, list_dir=False, suffix='.png',
                backend_args=self.backend_args):
            match = _FILE_PATTERN.match(name)
            if match is None or match.group(2) != domain:
                continue
            views.append(match.group(1))
        return views

    def _read_split(self) -> List[str]:
        text = fileio.get_text(self.ann_file, backend_args=self.backend_args)
        views = []
        for line_no, line in enumerate(text.splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            match = _VIEW_PATTERN.search(line)
            if match is None:
                raise ValueError(
                    f'{self.ann_file}:{line_no}: expected a view name '
                    f'"point_P_view_V" or a line '
                    f'"{{domain}}/point_P_view_V_domain_{{domain}}.png", got '
                    f'{line!r}')
            views.append(match.group(0))
        if not views:
            raise ValueError(f'Split file {self.ann_file} lists no views')
        return views

    def load_data_list(self) -> List[dict]:
        """Collect the views and their per-domain file paths.

        Returns:
            list[dict]: One data info per view.
        """
        if self.ann_file:
            views = self._read_split()
            present = {
                d: {
                    v
                    for v in views if fileio.exists(
                        self.domain_file(v, d),
                        backend_args=self.backend_args)
                }
                for d in self.domains
            }
        else:
            present = {d: set(self._scan_domain(d)) for d in self.domains}
            views = sorted(set().union(*present.values()), key=_view_sort_key)
            if not views:
                raise FileNotFoundError(
                    f'TaskonomyDataset: no point_P_view_V_domain_D.png files '
                    f'for domains {self.domains} under {self.data_root}')

        missing = [(v, d) for v in views for d in self.domains
                   if v not in present[d]]
        if missing:
            listed = ', '.join(f'{v} (no {d}: {self.domain_file(v, d)})'
                               for v, d in missing[:5])
            more = f' and {len(missing) - 5} more' if len(missing) > 5 else ''
            if self.on_missing == 'error':
                raise FileNotFoundError(
                    f'TaskonomyDataset: views missing in some requested '
                    f'domain: {listed}{more}. Remove them from the split or '
                    "pass on_missing='skip'.")
            print_log(f'TaskonomyDataset: skipping {len(missing)} missing '
                      f'view/domain files: {listed}{more}', 'current')
            dropped = {v for v, _ in missing}
            views = [v for v in views if v not in dropped]

        data_list = []
        for view in views:
            info = dict(view=view)
            for domain in self.domains:
                info[f'img_{domain}_path'] = self.domain_file(view, domain)
            data_list.append(info)
        return data_list
