"""The media service's pure logic: sniffing, the image pipeline, variant presets. No I/O."""
