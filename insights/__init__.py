"""The composition root: the `insights` command line, the wiring of `insights up` and the demo.

It imports the packages below it (`collector`, the core; `exporters`, `dashboard`, `scoring`) and
puts them together; none of them imports it.
"""
