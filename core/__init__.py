"""The ground every layer stands on: errors, shared types and text helpers; imports nothing of ours."""
