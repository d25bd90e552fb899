"""The course's claims, one module per chapter; importing this package registers them all."""

from explodegrad.claims.chapters import ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08  # noqa: F401
