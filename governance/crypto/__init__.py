"""Keys and envelopes: the key ring on disk, AES-256-GCM envelopes, wrapped data keys."""
