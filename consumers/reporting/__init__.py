"""Reporting, the first third-party consumer: the sync's topics into SQLite tables
(`sink`), and the tables' declarations (`tables`)."""
