"""Trade detection: posts that advertise paid access across platforms, the account networks behind them,
and a prompt guard for generation services.

Modules: :mod:`.normalise` (evasion-proof text views), :mod:`.terms` (operator term lists, Aho-Corasick),
:mod:`.ages`, :mod:`.prices`, :mod:`.links` (extraction, normalisation, platform catalogue), :mod:`.rules`
(TOML rules), :mod:`.posts` (feed scanner), :mod:`.graph` (account networks), :mod:`.confirmed` (reviewer
decisions and the signals they confirm), :mod:`.prompt_guard`, and :mod:`.settings` (the ``[trade]`` section).
The command line is :mod:`tripwire.cli.trade` (``tripwire posts`` / ``tripwire prompt``).
"""
