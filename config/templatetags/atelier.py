"""Small template helpers shared by every page."""

from django import template

register = template.Library()


@register.filter
def startswith(value: str, prefix: str) -> bool:
    """``{% if request.path|startswith:"/evaluation/" %}`` for marking the current nav link."""
    return str(value).startswith(str(prefix))
