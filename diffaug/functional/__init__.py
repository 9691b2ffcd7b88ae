"""diffaug's functional core: pure tensor functions, no modules and no randomness.

* :mod:`diffaug.functional.geometry`: the coordinate convention (boxes <-> theta, pixel <->
  normalised) and matrix helpers;
* :mod:`diffaug.functional.warp`: images + theta -> images (``warp``, ``crop``);
* :mod:`diffaug.functional.targets`: boxes, keypoints and masks through the same theta.
"""

from diffaug.functional.geometry import (
    apply_to_points,
    boxes_to_normalized,
    boxes_to_theta,
    compose_theta,
    flip_matrix,
    identity,
    invert,
    normalized_from_pixel_matrix,
    normalized_to_boxes,
    output_pixel_scale,
    pixel_matrix_from_normalized,
    reflect_grid,
    reflect_index,
    rotate_matrix,
    sampling_grid,
    scale_matrix,
    shear_matrix,
    theta_to_boxes,
    to_square,
    to_theta,
    translate_matrix,
)
from diffaug.functional.mixing import box_area_fraction, box_cover, cutmix, erase, mix_labels, mixup, one_hot
from diffaug.functional.targets import (
    forward_pixel_matrix,
    inverse_theta,
    transform_boxes,
    transform_keypoints,
    transform_masks,
    transform_points,
    transform_tv,
)
from diffaug.functional.warp import compute_dtype, crop, warp

__all__ = [
    "box_area_fraction",
    "box_cover",
    "cutmix",
    "erase",
    "mix_labels",
    "mixup",
    "one_hot",
    "forward_pixel_matrix",
    "inverse_theta",
    "transform_boxes",
    "transform_keypoints",
    "transform_masks",
    "transform_points",
    "transform_tv",
    "apply_to_points",
    "boxes_to_normalized",
    "boxes_to_theta",
    "compose_theta",
    "compute_dtype",
    "crop",
    "flip_matrix",
    "identity",
    "invert",
    "normalized_from_pixel_matrix",
    "normalized_to_boxes",
    "output_pixel_scale",
    "pixel_matrix_from_normalized",
    "rotate_matrix",
    "sampling_grid",
    "reflect_grid",
    "reflect_index",
    "scale_matrix",
    "shear_matrix",
    "theta_to_boxes",
    "to_square",
    "to_theta",
    "translate_matrix",
    "warp",
]
