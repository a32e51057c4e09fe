"""Face detection: model files, BlazeFace decoding, the network, the scan and its presets."""
