"""Providers shipped with dagorch.

They register through dagorch's own ``dagorch.providers`` entry point, exactly as a third-party
package would; the engine never imports this package directly.
"""

__all__: list[str] = []
