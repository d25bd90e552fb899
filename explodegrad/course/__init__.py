"""The course: the notebooks' setup call (:func:`setup`: seed, scale, device, theme) and the
exercises (:mod:`explodegrad.course.exercises`)."""

from explodegrad.course.context import CourseContext, seed_everything, setup, versions

__all__ = ["CourseContext", "seed_everything", "setup", "versions"]
