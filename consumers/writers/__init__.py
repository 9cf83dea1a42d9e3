"""The writers: commands in, each applied to its system, Results out.

`command_writer` is the `Handler` both share (retries, dead letters); `plan` compares a
command with the target's record; a `Target` per system does the rest: `odoo`, and
`clientify` with its orders, lookups and index. `dead_letters` reads what the writers
could not apply and sends it back.
"""
