"""The demo: `python manage.py seed_demo` builds realistic organizations, members, credits and months of usage.

It sits above every app (it uses all of them, through their services); no app imports it.
"""
