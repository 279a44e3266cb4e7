"""What the PHP app (<= 5.3) really sends; ActionJob drops an action answered 4xx, the indexing jobs a source that is
neither loaded nor to retry.

PHP turns an array key that is a decimal integer string into an int: a group share's readers come from
`array_keys($shareManager->getAccessList(...)['users'])` (context_chat 5.3.1 ShareListener), so a numeric user id
("12345", common with LDAP) arrives as the JSON number 12345.
"""

from __future__ import annotations

from typing import Any

from contract_kit import SourcePart, put_sources, signed_headers
from quart.typing import TestClientProtocol as Client

OK = (200, {"message": "Access updated"})
SOURCE = "files__default: 501"


async def post(client: Client, path: str, body: Any) -> tuple[int, Any]:
    response = await client.post(path, json=body, headers=signed_headers())
    return response.status_code, await response.get_json()


async def load(client: Client, users: list[str]) -> None:
    text = b"The quarterly report for the Lisbon office lists a travel budget of 9000 euros."
    response = await put_sources(client, [SourcePart(SOURCE, text, user_ids=users, title="report.txt")])
    assert response.status_code == 200 and (await response.get_json())["loaded_sources"] == [SOURCE]


async def readers(client: Client, users: list[str]) -> set[str]:
    found = set()
    for user in users:
        status, hits = await post(client, "/docSearch", {"userId": user, "query": "Lisbon travel budget"})
        assert status == 200, hits
        if SOURCE in {hit["source_id"] for hit in hits}:
            found.add(user)
    return found


async def test_numeric_user_ids_sent_as_json_numbers_are_user_ids(client: Client) -> None:
    await load(client, ["alice", "12345"])
    assert await post(client, "/updateAccess", {"op": "allow", "userIds": [67890], "sourceId": SOURCE}) == OK
    assert await readers(client, ["alice", "12345", "67890"]) == {"alice", "12345", "67890"}
    # an unshare from a group: the declared readers, numbers and strings mixed; 12345 loses access
    assert await post(client, "/updateAccessDeclarative", {"userIds": ["alice", 67890], "sourceId": SOURCE}) == OK
    assert await readers(client, ["alice", "12345", "67890"]) == {"alice", "67890"}
    body = {"op": "deny", "userIds": [67890], "providerId": "files__default"}
    assert await post(client, "/updateAccessProvider", body) == OK
    assert await readers(client, ["alice", "67890"]) == {"alice"}


async def test_a_json_number_that_is_not_an_integer_or_a_boolean_is_still_refused(client: Client) -> None:
    for value in (1.5, True, None):
        status, answer = await post(client, "/updateAccess", {"op": "allow", "userIds": [value], "sourceId": SOURCE})
        assert status == 422 and answer["detail"][0]["loc"] == ["body", "userIds", 0], (value, answer)


async def test_delete_provider_by_the_bare_provider_id_an_app_disable_sends(client: Client) -> None:
    # context_chat <= 5.4 AppDisableListener: deleteProvider($providerId), without the app id (context_chat#258)
    parts = [
        SourcePart("mail__messages: 1", b"Lisbon hotel invoice.", user_ids=["alice"], provider="mail__messages"),
        SourcePart("files__default: 2", b"Lisbon office floor plan.", user_ids=["alice"]),
    ]
    response = await put_sources(client, parts)
    assert response.status_code == 200
    deleted = (200, {"message": "All valid sources deleted"})
    assert await post(client, "/deleteProvider", {"providerKey": "messages"}) == deleted
    # the files provider is never a content provider an app disable means
    assert await post(client, "/deleteProvider", {"providerKey": "default"}) == deleted
    assert await post(client, "/countIndexedDocuments", None) == (200, {"files__default": 1})


async def test_the_later_of_two_parts_with_one_source_id_is_indexed(client: Client) -> None:
    # context_chat 5.3 SubmitContentJob: an item submitted again before the job ran is queued twice (no unique key
    # before 5.4), sent in queue (id) order in one request, and both rows leave the queue on the answer
    old = SourcePart("deck__cards: 7", b"Card: book the Porto ferry.", user_ids=["alice"], provider="deck__cards")
    new = SourcePart("deck__cards: 7", b"Card: book the Faro train.", user_ids=["alice", "bob"], provider="deck__cards")
    response = await put_sources(client, [old, new])
    assert response.status_code == 200
    assert await response.get_json() == {"loaded_sources": ["deck__cards: 7"], "sources_to_retry": []}
    ask = {"userId": "bob", "query": "book the ferry or the train", "withPassages": True}
    status, hits = await post(client, "/docSearch", ask)
    assert status == 200 and [(hit["source_id"], hit["passage"]) for hit in hits] == [
        ("deck__cards: 7", "Card: book the Faro train.")
    ]
