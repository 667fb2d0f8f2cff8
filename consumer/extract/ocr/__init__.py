"""Reading scans and photos: page images to words with positions (Tesseract, in worker processes)."""
