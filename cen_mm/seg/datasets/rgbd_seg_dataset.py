# Copyright (c) cen_mm contributors. All rights reserved.
"""Base dataset for aligned RGB + depth semantic segmentation."""
import os.path as osp
from typing import List, Optional, Sequence

import mmengine
import mmengine.fileio as fileio
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

__all__ = ['RGBDSegDataset']


@DATASETS.register_module()
class RGBDSegDataset(BaseSegDataset):
    """Semantic segmentation dataset with an aligned depth map per image.

    The on-disk layout (written by ``tools/dataset_converters/nyudv2.py`` and
    ``tools/misc/generate_synthetic_rgbd.py``) is:

    .. code-block:: none

        data_root
        ├── rgb/<split>/<stem>{img_suffix}        # 8-bit colour image
        ├── depth/<split>/<stem>{depth_suffix}    # uint16 depth (raw units)
        ├── label/<split>/<stem>{seg_map_suffix}  # 8-bit class ids, 255 void
        └── <split>.txt                           # optional list of stems

    with ``data_prefix=dict(img_path='rgb/<split>', depth_path='depth/<split>',
    seg_map_path='label/<split>')``. Samples are listed by ``ann_file`` or,
    when it is empty, by scanning ``img_path`` for ``img_suffix`` files.

    ``ann_file`` accepts two line formats (they may not be mixed):

    - a stem per line (``000464``), resolved through ``data_prefix``;
    - the official CEN split format: whitespace-separated path triples
      relative to ``data_root``, by default ``rgb/x.png  masks/x.png
      depth/x.png`` (order set by ``triplet_order``); ``data_prefix`` is
      ignored for these lines.

    Every data info holds ``img_path``, ``depth_path`` and (when labels are
    available) ``seg_map_path``.

    Args:
        img_suffix (str): Suffix of RGB images. Defaults to '.png'.
        depth_suffix (str): Suffix of depth maps. Defaults to '.png'.
        seg_map_suffix (str): Suffix of label maps. Defaults to '.png'.
        data_prefix (dict): Folders (joined onto ``data_root``) with keys
            ``img_path``, ``depth_path`` and ``seg_map_path``; leave out
            ``seg_map_path`` for unlabelled test data.
        triplet_order (Sequence[str]): Meaning of the three columns of a
            triplet line. Defaults to the official order
            ``('img_path', 'seg_map_path', 'depth_path')``.
        check_files (bool): Check at construction time that every RGB, depth
            and label file exists, and raise naming the first missing one.
            Defaults to True.
        **kwargs: Other arguments of :class:`mmseg.datasets.BaseSegDataset`.
    """
    METAINFO: dict = dict()
    _KEYS = ('img_path', 'depth_path', 'seg_map_path')

    def __init__(self,
                 img_suffix: str = '.png',
                 depth_suffix: str = '.png',
                 seg_map_suffix: str = '.png',
                 data_prefix: dict = dict(
                     img_path='', depth_path='', seg_map_path=''),
                 triplet_order: Sequence[str] = ('img_path', 'seg_map_path',
                                                 'depth_path'),
                 check_files: bool = True,
                 **kwargs) -> None:
        if 'depth_path' not in data_prefix:
            raise KeyError(
                f'{type(self).__name__}: data_prefix must contain '
                f"'depth_path' (the depth folder); got {data_prefix}")
        if sorted(triplet_order) != sorted(self._KEYS):
            raise ValueError(
                f'triplet_order must be a permutation of {self._KEYS}, got '
                f'{triplet_order}')
        self.depth_suffix = depth_suffix
        self.triplet_order = tuple(triplet_order)
        self.check_files = check_files
        super().__init__(
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            data_prefix=data_prefix,
            **kwargs)

    def _make_info(self, paths: dict) -> dict:
        info = dict(paths)
        info['label_map'] = self.label_map
        info['reduce_zero_label'] = self.reduce_zero_label
        # Lets LoadRGBDAnnotations check label ranges without a per-dataset
        # pipeline (the pipelines in configs/_base_/datasets are shared).
        info['num_classes'] = len(self.metainfo['classes'])
        info['seg_fields'] = []
        return info

    def _infos_from_stems(self, stems: List[str]) -> List[dict]:
        img_dir = self.data_prefix.get('img_path') or ''
        depth_dir = self.data_prefix.get('depth_path') or ''
        seg_dir = self.data_prefix.get('seg_map_path', None)
        infos = []
        for stem in stems:
            paths = dict(
                img_path=osp.join(img_dir, stem + self.img_suffix),
                depth_path=osp.join(depth_dir, stem + self.depth_suffix))
            if seg_dir is not None:
                paths['seg_map_path'] = osp.join(seg_dir,
                                                 stem + self.seg_map_suffix)
            infos.append(self._make_info(paths))
        return infos

    def _infos_from_triplets(self, lines: List[List[str]]) -> List[dict]:
        root = self.data_root or ''
        infos = []
        for fields in lines:
            paths = {
                key: osp.join(root, rel)
                for key, rel in zip(self.triplet_order, fields)
            }
            infos.append(self._make_info(paths))
        return infos

    def _read_ann_file(self) -> List[dict]:
        lines = [
            line.split() for line in mmengine.list_from_file(
                self.ann_file, backend_args=self.backend_args)
            if line.strip()
        ]
        widths = {len(fields) for fields in lines}
        if widths == {1}:
            return self._infos_from_stems([fields[0] for fields in lines])
        if widths == {3}:
            return self._infos_from_triplets(lines)
        raise ValueError(
            f'ann_file {self.ann_file}: every line must be either one stem '
            f'or an (rgb, mask, depth) path triplet, found lines with '
            f'{sorted(widths)} fields')

    def _scan_img_dir(self) -> List[dict]:
        img_dir = self.data_prefix.get('img_path') or ''
        if not fileio.isdir(img_dir, backend_args=self.backend_args):
            raise FileNotFoundError(
                f'{type(self).__name__}: RGB folder {img_dir!r} does not '
                'exist (data_root + data_prefix.img_path); see '
                'docs/datasets.md for the expected layout')
        stems = [
            name[:-len(self.img_suffix)]
            for name in fileio.list_dir_or_file(
                img_dir,
                list_dir=False,
                suffix=self.img_suffix,
                recursive=True,
                backend_args=self.backend_args)
        ]
        return self._infos_from_stems(sorted(stems))

    def _check_exists(self, data_list: List[dict]) -> None:
        kinds = dict(img_path='RGB image', depth_path='depth map',
                     seg_map_path='label map')
        for info in data_list:
            for key, kind in kinds.items():
                path = info.get(key)
                if path is not None and not fileio.exists(
                        path, backend_args=self.backend_args):
                    raise FileNotFoundError(
                        f'{type(self).__name__}: {kind} {path} does not '
                        f'exist (sample with RGB image {info["img_path"]})')

    def load_data_list(self) -> List[dict]:
        """Load the sample list from ``ann_file`` or by scanning folders.

        Returns:
            list[dict]: One dict per sample with ``img_path``, ``depth_path``,
            optionally ``seg_map_path``, and mmseg's ``label_map``,
            ``reduce_zero_label`` and ``seg_fields``.
        """
        if self.ann_file and fileio.isfile(
                self.ann_file, backend_args=self.backend_args):
            data_list = self._read_ann_file()
        elif self.ann_file and not fileio.isdir(
                self.ann_file, backend_args=self.backend_args):
            raise FileNotFoundError(
                f'{type(self).__name__}: ann_file {self.ann_file} does not '
                'exist')
        else:
            data_list = self._scan_img_dir()
        if not data_list:
            raise ValueError(
                f'{type(self).__name__}: no samples found (ann_file='
                f'{self.ann_file!r}, data_prefix={self.data_prefix})')
        if self.check_files:
            self._check_exists(data_list)
        return data_list
