"""TeViT (CVPR 2022): MsgShifT backbone, FPN, learned proposals, STQI head, dynamic mask head."""
