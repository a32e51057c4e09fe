"""Images: types, header sniffing, decode, encode, mask, and the pixel budget."""
