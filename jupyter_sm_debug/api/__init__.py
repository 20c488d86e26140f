"""The REST API of /sm-debug: the only place HTTP becomes domain values.

- routes.py: the one route table.
- base.py: the handler base (path arguments checked in prepare(), the one error renderer).
- spec.py: declarative body and query specs (one policy for unknown keys and booleans).
- target.py: HostTargets built once per request ("is the job reachable?" decided here).
- jobs.py, hosts.py, forwards.py: the routes, thin: parse, build targets, call, answer.
"""
