"""IFC: Video Instance Segmentation using Inter-Frame Communication Transformers (official layout)."""
