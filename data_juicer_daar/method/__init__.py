"""The DaaR method, from a sample's text to the selected rows; imports no Data-Juicer module."""
