"""Every connector held to the contract of test_contract.py: name -> its World class.
A new connector joins with a world_<connector>.py (see harness.World) and one line here."""
from world_peopleforce import PeopleForceWorld
from world_personio import PersonioWorld
from world_workelo import WorkeloWorld
from world_teamtailor import TeamtailorWorld
from world_troops import TroopsWorld

CONNECTORS = {w.name: w for w in (PeopleForceWorld, PersonioWorld, TroopsWorld, WorkeloWorld, TeamtailorWorld)}
