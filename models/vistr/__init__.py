"""VisTR (CVPR 2021): frozen-BN ResNet, 3-D sine positions, DETR transformer over a whole clip,
frame-bound queries, FPN + deformable-conv mask head and a 3-D fusion head."""
