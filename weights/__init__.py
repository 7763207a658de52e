"""Shipped weights. This folder is installed as the package ``mgctag.shipped`` so that
the same lookup finds it in a checkout, an editable install and a wheel."""
