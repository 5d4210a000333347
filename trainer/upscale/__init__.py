"""upscale: the PONO-MS x4 photo upscaler (issue 33; ``upscale`` task, model ``upscale-pono``)."""
