"""`gankit reproduce`: re-run each report's headline experiments and put its numbers beside ours."""
