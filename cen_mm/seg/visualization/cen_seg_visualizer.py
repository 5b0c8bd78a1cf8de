# Copyright (c) cen_mm contributors. All rights reserved.
"""Side-by-side overlays of the input, the ground truth, every stream and
the ensemble of a multi-stream segmentor, with a class legend."""
from typing import List, Optional, Sequence, Tuple

import cv2
import mmcv
import numpy as np
import torch
from mmengine.dist import master_only
from mmengine.structures import PixelData
from mmseg.registry import VISUALIZERS
from mmseg.structures import SegDataSample
from mmseg.visualization import SegLocalVisualizer

__all__ = ['CENSegLocalVisualizer']

FONT = cv2.FONT_HERSHEY_SIMPLEX


@VISUALIZERS.register_module()
class CENSegLocalVisualizer(SegLocalVisualizer):
    """mmseg's ``SegLocalVisualizer`` for multi-stream predictions.

    :meth:`add_datasample` draws one row of labelled panels: the input, the
    ground truth (if present and ``draw_gt``), each stream's prediction
    ``pred_sem_seg_{name}`` (the names come from the prediction's
    ``stream_names`` metainfo, set by :class:`CENEncoderDecoder`) and the
    ensemble ``pred_sem_seg``, each as mmseg's overlay of the class colours
    (with class names on the regions if ``with_labels``), and below them a
    legend of every class that appears. The image goes to the visualiser's
    backends (``LocalVisBackend`` files, TensorBoard, ...), to ``out_file``
    or to a window, as in mmseg. A sample without ``stream_names`` gives the
    input, GT and prediction panels.

    Args:
        name (str): Name of the instance. Default: ``'visualizer'``.
        panel_height (int, optional): Resize every panel to this height
            (keeping the aspect ratio); None keeps the input size.
            Default: None.
        **kwargs: Arguments of :class:`SegLocalVisualizer` (
            ``vis_backends``, ``save_dir``, ``alpha``, ``classes``,
            ``palette``, ``dataset_name``).
    """

    def __init__(self,
                 name: str = 'visualizer',
                 panel_height: Optional[int] = None,
                 **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.panel_height = panel_height

    def draw_panels(self,
                    image: np.ndarray,
                    data_sample: SegDataSample,
                    draw_gt: bool = True,
                    draw_pred: bool = True,
                    with_labels: bool = True) -> np.ndarray:
        """Draw the labelled panels and the legend.

        Args:
            image (np.ndarray): RGB input image ``(H, W, 3)``.
            data_sample (:obj:`SegDataSample`): Prediction (and GT).
            draw_gt (bool): Draw the ground truth. Default: True.
            draw_pred (bool): Draw the predictions. Default: True.
            with_labels (bool): Class names on the regions. Default: True.

        Returns:
            np.ndarray: The RGB canvas.
        """
        classes = self.dataset_meta.get('classes')
        palette = self.dataset_meta.get('palette')
        if classes is None or palette is None:
            raise ValueError(f'{type(self).__name__}: set dataset_meta '
                             '(classes and palette) before drawing')
        image = np.ascontiguousarray(image[..., :3]).astype(np.uint8)
        panels: List[Tuple[str, np.ndarray]] = [('input', image)]
        maps: List[PixelData] = []
        if draw_gt and 'gt_sem_seg' in data_sample:
            maps.append(data_sample.gt_sem_seg)
            panels.append(('ground truth', data_sample.gt_sem_seg))
        if draw_pred:
            for name in data_sample.metainfo.get('stream_names', ()):
                key = f'pred_sem_seg_{name}'
                if key in data_sample:
                    panels.append((name, data_sample.get(key)))
            if 'pred_sem_seg' in data_sample:
                title = 'ensemble' if len(panels) > 2 + bool(maps) else \
                    'prediction'
                panels.append((title, data_sample.pred_sem_seg))
        drawn = []
        present = set()
        for title, panel in panels:
            if isinstance(panel, PixelData):
                seg = torch.as_tensor(panel.data).cpu()
                seg = seg.reshape(1, *seg.shape[-2:])
                present.update(
                    int(c) for c in np.unique(seg.numpy())
                    if c < len(classes))
                panel = self._draw_sem_seg(image, PixelData(data=seg),
                                           classes, palette, with_labels)
            drawn.append(self._titled(panel, title))
        row = np.concatenate(drawn, axis=1)
        legend = self._legend(sorted(present), classes, palette, row.shape[1])
        return np.concatenate([row, legend], axis=0) if legend is not None \
            else row

    def _titled(self, panel: np.ndarray, title: str) -> np.ndarray:
        if self.panel_height and panel.shape[0] != self.panel_height:
            width = round(panel.shape[1] * self.panel_height / panel.shape[0])
            panel = mmcv.imresize(panel, (width, self.panel_height))
        bar = np.full((22, panel.shape[1], 3), 255, np.uint8)
        cv2.putText(bar, title, (4, 16), FONT, 0.5, (0, 0, 0), 1,
                    cv2.LINE_AA)
        return np.concatenate([bar, panel], axis=0)

    @staticmethod
    def _legend(labels: Sequence[int], classes: Sequence[str],
                palette: Sequence, width: int) -> Optional[np.ndarray]:
        """Rows of colour swatches with class names, ``width`` wide."""
        if not labels:
            return None
        cells = []
        for label in labels:
            text = f'{label} {classes[label]}'
            text_width = cv2.getTextSize(text, FONT, 0.45, 1)[0][0]
            cell = np.full((20, text_width + 28, 3), 255, np.uint8)
            cell[4:16, 4:16] = np.asarray(palette[label], np.uint8)
            cv2.putText(cell, text, (22, 14), FONT, 0.45, (0, 0, 0), 1,
                        cv2.LINE_AA)
            cells.append(cell)
        rows, row, used = [], [], 0
        for cell in cells:
            if row and used + cell.shape[1] > width:
                rows.append(row)
                row, used = [], 0
            row.append(cell)
            used += cell.shape[1]
        rows.append(row)
        canvas = np.full((20 * len(rows) + 4, width, 3), 255, np.uint8)
        for r, row in enumerate(rows):
            x = 0
            for cell in row:
                w = min(cell.shape[1], width - x)
                canvas[20 * r + 2:20 * r + 22, x:x + w] = cell[:, :w]
                x += w
        return canvas

    @master_only
    def add_datasample(self,
                       name: str,
                       image: np.ndarray,
                       data_sample: Optional[SegDataSample] = None,
                       draw_gt: bool = True,
                       draw_pred: bool = True,
                       show: bool = False,
                       wait_time: float = 0,
                       out_file: Optional[str] = None,
                       step: int = 0,
                       with_labels: Optional[bool] = True) -> None:
        """Draw the panels of ``data_sample`` and save them to the
        backends, ``out_file`` or a window (see :class:`SegLocalVisualizer`).
        """
        if data_sample is None:
            return super().add_datasample(name, image, data_sample, draw_gt,
                                          draw_pred, show, wait_time,
                                          out_file, step, with_labels)
        drawn_img = self.draw_panels(image, data_sample, draw_gt, draw_pred,
                                     with_labels)
        self.set_image(drawn_img)
        if show:
            self.show(drawn_img, win_name=name, wait_time=wait_time)
        if out_file is not None:
            mmcv.imwrite(mmcv.rgb2bgr(drawn_img), out_file)
        else:
            self.add_image(name, drawn_img, step)
