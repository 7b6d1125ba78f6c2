"""The operator dashboard of the events API process: `GET /dashboard` (a static page and
its scripts, plotly.js served from the installed package) and `GET /v1/dashboard` (the JSON
the page polls, operator-authenticated). Not a room of its own: like api.py it composes the
rooms (ranking's registry and counts, online's authentication, learning's analysis once a
rollout has one) and the other processes' Prometheus metrics."""
