"""scarguide: answers patients' questions about acne scars from one trusted guide."""

__version__ = "0.1.0"
