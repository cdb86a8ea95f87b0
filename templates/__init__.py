"""Mail templates (package data): ``email/<language>/<name>.{subject.txt,txt,html}``."""
