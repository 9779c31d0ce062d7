"""The margin engine's in-memory book: every account's cash and open binary
positions as arrays, kept current cheaply.

- `load()` reads everything through the one priced-position loader
  (`portfolio_load`, i.e. `positions_priced_load`, which the API and the
  dashboard read through too): the full refresh, on a timer.
- `refresh_changed()` reloads only the accounts in the Redis "accounts
  changed" set (every journal marks the accounts whose cash changed: fills,
  deposits, withdrawals, settlement, liquidation), taken atomically.
- `prices_update(symbols)` re-prices the contracts of the instruments that
  moved, from the quote store (the source of truth; a tick is a hint) by the
  same collateral-price rule (`collateral_quote`), and returns the accounts
  holding them: a tick re-evaluates only those.
- `evaluate(indices)` runs `margin_evaluate` over those accounts' positions,
  and says which of them rest on a stale price (older than the risk
  policy's `price_stale_after_seconds`, in a market that trades).

Account slots are stable: an account keeps its index for the life of the
book and new accounts are appended, so callers can keep per-account state in
arrays aligned with `account_ids`. The book is a cache: the database and the
quote store stay the truth, and anything that acts on money re-checks there.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from accounts.models import Account
from accounts.services.ledger import accounts_changed_key, accounts_changed_mark
from portal.redis import redis_client
from portal.shards import Shard
from trading import margin
from trading.catalog import instruments_get, listings_get
from trading.marketdata import store
from trading.models import Instrument, RiskPolicy
from trading.selectors import (
    SECONDS_PER_DAY,
    Contract,
    Portfolio,
    collateral_quote,
    margin_params_get,
    portfolio_load,
    price_max_age,
)

BoolArray = NDArray[np.bool_]
NO_ACCOUNTS = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class BookFigures:
    """Margin figures of some of the book's accounts at one instant.

    Every array is aligned with `index` (the accounts' slots in the book).
    `health` is +inf when Used Margin is 0; `status` holds margin.HEALTHY,
    CAUTION or MARGIN_CALL.
    """

    index: margin.IntArray
    account_id: margin.IntArray
    custodial: BoolArray
    may_borrow: BoolArray  # margin enabled: the account can borrow (cash below zero)
    cash: margin.FloatArray
    adjusted_equity: margin.FloatArray
    used_margin: margin.FloatArray
    available_margin: margin.FloatArray
    health: margin.FloatArray
    utilization: margin.FloatArray
    status: NDArray[np.int8]
    stale: BoolArray  # some position is priced with a stale price
    stale_since: margin.FloatArray  # epoch seconds of the oldest stale price (nan: none)
    at: datetime

    def __len__(self) -> int:
        return int(self.index.size)

    def take(self, rows: margin.IntArray | BoolArray) -> "BookFigures":
        """The figures of a subset of these accounts (a mask or positions)."""
        return replace(
            self,
            **{f.name: getattr(self, f.name)[rows] for f in fields(self) if f.name != "at"},
        )


def _accounts():
    """Accounts as the book loads them: what `Account.risk_cash` needs, one query."""
    return Account.objects.select_related("linked_credential").only(
        "pk",
        "kind",
        "margin_enabled",
        "cash_balance",
        "withdrawals_held",
        "orders_reserved",
        "linked_credential__cash_balance",
    )


def accounts_changed_pop(shard: int = 0) -> list[int]:
    """Take every id from the (this shard's) "accounts changed" set, emptying it, in
    one atomic step."""
    key = accounts_changed_key(shard)
    pipe = redis_client().pipeline(transaction=True)
    pipe.smembers(key)
    pipe.delete(key)
    members, _ = pipe.execute()
    return sorted(int(member) for member in members)


class MarginBook:
    """Cash and binary positions of every account (of `shard`: the accounts
    `portal.shards` gives it), as margin-engine arrays."""

    def __init__(self, shard: Shard | None = None) -> None:
        self.shard = shard or Shard()
        self.params = margin.MarginParams()
        # The policy's default until `load` reads the policy (no query in a constructor).
        self.price_max_age = float(
            RiskPolicy._meta.get_field("price_stale_after_seconds").get_default()
        )
        self.account_ids: margin.IntArray = np.zeros(0, dtype=np.int64)
        self.custodial: BoolArray = np.zeros(0, dtype=bool)
        self.may_borrow: BoolArray = np.zeros(0, dtype=bool)
        self.cash: margin.FloatArray = np.zeros(0)
        self._slot: dict[int, int] = {}
        self.position_account: margin.IntArray = np.zeros(0, dtype=np.int64)
        self.position_contract: margin.IntArray = np.zeros(0, dtype=np.int64)
        self.quantity: margin.FloatArray = np.zeros(0)
        self._contracts_reset()

    def _contracts_reset(self) -> None:
        self._contract_slot: dict[tuple[int, str], int] = {}
        self._contract_outcome: list[str] = []
        self.contract_price: margin.FloatArray = np.zeros(0)
        self._contract_quoted_at = np.zeros(0)  # epoch seconds of the price (nan: none)
        self._contract_ages = np.zeros(0, dtype=bool)  # its market trades: prices age
        self._contract_expiry = np.zeros(0)  # epoch seconds
        self._contract_addon = np.zeros(0)
        self._contract_group = np.zeros(0, dtype=np.int64)
        self._symbol_contracts: dict[str, list[int]] = defaultdict(list)
        self._symbol_listings: dict[str, list[str]] = {}
        self._derived_reset()

    def _derived_reset(self) -> None:
        self._grouping_all: margin.Grouping | None = None
        self._order_all: margin.IntArray | slice = NO_ACCOUNTS
        self._holders: tuple[margin.IntArray, margin.IntArray] | None = None

    @property
    def n_accounts(self) -> int:
        return int(self.account_ids.size)

    @property
    def n_positions(self) -> int:
        return int(self.quantity.size)

    def __contains__(self, account_id: int) -> bool:
        return account_id in self._slot

    def slots_of(self, account_ids: Iterable[int]) -> margin.IntArray:
        """The slots of these accounts (each must be in the book)."""
        return np.array([self._slot[account_id] for account_id in account_ids], dtype=np.int64)

    # Loading -----------------------------------------------------------------

    def load(self, *, consume_changes: bool = True) -> None:
        """Reload every account, position, price and the risk policy.

        With `consume_changes` (the engine, the set's one consumer), empties
        the "accounts changed" set first: what changes while this runs is
        marked again and picked up by the next `refresh_changed`. A one-off
        sweep passes False and leaves the set to the engine. Existing
        accounts keep their slots.
        """
        if consume_changes:
            accounts_changed_pop(self.shard.index)
        self.params = margin_params_get()
        self.price_max_age = price_max_age()
        accounts = list(self.shard.filter(_accounts()).order_by("pk"))
        portfolio = portfolio_load(accounts=accounts)
        self._contracts_reset()
        self._apply(accounts, portfolio, everything=True)

    def refresh(self, *, account_ids: Sequence[int]) -> margin.IntArray:
        """Reload these accounts' cash and positions (those of this shard); return their
        slots."""
        if not self.shard.whole:
            account_ids = [pk for pk in account_ids if self.shard.owns(pk)]
        accounts = list(_accounts().filter(pk__in=account_ids).order_by("pk"))
        if not accounts:
            return NO_ACCOUNTS
        return self._apply(accounts, portfolio_load(accounts=accounts), everything=False)

    def refresh_changed(self) -> margin.IntArray:
        """Reload the accounts marked changed since the last call; return their slots.

        If reloading fails, the ids are marked again (nothing is lost) and
        the error propagates.
        """
        account_ids = accounts_changed_pop(self.shard.index)
        if not account_ids:
            return NO_ACCOUNTS
        try:
            return self.refresh(account_ids=account_ids)
        except BaseException:
            accounts_changed_mark(account_ids=account_ids)
            raise

    def _apply(
        self, accounts: list[Account], portfolio: Portfolio, *, everything: bool
    ) -> margin.IntArray:
        new_ids = [account.pk for account in accounts if account.pk not in self._slot]
        if new_ids:
            for account_id in new_ids:
                self._slot[account_id] = len(self._slot)
            self.account_ids = np.concatenate([self.account_ids, new_ids]).astype(np.int64)
            self.custodial = np.concatenate([self.custodial, np.zeros(len(new_ids), bool)])
            self.may_borrow = np.concatenate([self.may_borrow, np.zeros(len(new_ids), bool)])
            self.cash = np.concatenate([self.cash, np.zeros(len(new_ids))])
        slots = self.slots_of(account.pk for account in accounts)
        if everything:
            # An account gone from the database keeps its slot, empty.
            self.cash[:] = 0.0
            kept = np.zeros(self.n_positions, dtype=bool)
        else:
            reloaded = np.zeros(self.n_accounts, dtype=bool)
            reloaded[slots] = True
            kept = ~reloaded[self.position_account]
        self.cash[slots] = portfolio.cash
        self.custodial[slots] = [account.kind == Account.Kind.CUSTODIAL for account in accounts]
        self.may_borrow[slots] = [account.margin_enabled for account in accounts]
        contract_slots = self._contracts_merge(portfolio.contracts)
        self.position_account = np.concatenate(
            [self.position_account[kept], slots[portfolio.position_account]]
        )
        self.position_contract = np.concatenate(
            [self.position_contract[kept], contract_slots[portfolio.position_contract]]
        )
        self.quantity = np.concatenate([self.quantity[kept], portfolio.quantity])
        self._derived_reset()
        return slots

    def _contracts_merge(self, contracts: list[Contract]) -> margin.IntArray:
        """Book slots of these contracts: known ones re-priced, new ones appended."""
        slots = np.zeros(len(contracts), dtype=np.int64)
        new: list[Contract] = []
        for i, contract in enumerate(contracts):
            key = (contract.instrument_id, contract.outcome)
            slot = self._contract_slot.get(key)
            if slot is None:
                slot = self._contract_slot[key] = len(self._contract_slot)
                self._contract_outcome.append(contract.outcome)
                self._symbol_contracts[contract.symbol].append(slot)
                new.append(contract)
            else:
                self.contract_price[slot] = float(contract.collateral_price)
                self._contract_quoted_at[slot] = _epoch(contract.quoted_at)
            slots[i] = slot
        if new:
            instruments = instruments_get(c.instrument_id for c in new)
            self.contract_price = np.concatenate(
                [self.contract_price, [float(c.collateral_price) for c in new]]
            )
            self._contract_quoted_at = np.concatenate(
                [self._contract_quoted_at, [_epoch(c.quoted_at) for c in new]]
            )
            self._contract_ages = np.concatenate(
                [
                    self._contract_ages,
                    [instruments[c.instrument_id].status == Instrument.Status.OPEN for c in new],
                ]
            ).astype(bool)
            self._contract_expiry = np.concatenate(
                [self._contract_expiry, [c.expires_at.timestamp() for c in new]]
            )
            self._contract_addon = np.concatenate([self._contract_addon, [c.addon for c in new]])
            self._contract_group = np.concatenate(
                [self._contract_group, [c.event_group_id for c in new]]
            ).astype(np.int64)
            self._listings_load({c.instrument_id for c in new})
        return slots

    def _listings_load(self, instrument_ids: set[int]) -> None:
        """The listings a tick re-prices these instruments from: the ones every other
        valuation uses (`listings_get`: active listings on active venues)."""
        for instrument in instruments_get(instrument_ids).values():
            self._symbol_listings[instrument.symbol] = [
                listing.key for listing in listings_get(instrument)
            ]

    # Prices ------------------------------------------------------------------

    def prices_update(self, symbols: Iterable[str], *, at: datetime) -> margin.IntArray:
        """Re-price the contracts of these instruments; return the slots of their holders.

        Reads the listings' latest quotes from the quote store in one round
        trip. Symbols nobody holds cost nothing; only accounts holding a
        contract whose collateral price changed, or was stale and is live
        again, are returned.
        """
        held = [symbol for symbol in set(symbols) if symbol in self._symbol_contracts]
        if not held:
            return NO_ACCOUNTS
        quotes = store.quotes_get_many(
            key for symbol in held for key in self._symbol_listings.get(symbol, ())
        )
        moved = []
        for symbol in held:
            live = [quotes[key] for key in self._symbol_listings.get(symbol, ()) if key in quotes]
            for slot in self._symbol_contracts[symbol]:
                priced = collateral_quote(
                    live,
                    self._contract_outcome[slot],
                    fresh_after=at - timedelta(seconds=self.price_max_age),
                )
                if priced is None:
                    continue
                # A price that was stale and is live again counts as a move: the
                # holders' calls, deferred meanwhile, are decided now.
                revived = bool(self._contract_ages[slot]) and (
                    at.timestamp() - self._contract_quoted_at[slot] > self.price_max_age
                )
                self._contract_quoted_at[slot] = priced[1].timestamp()
                if revived or float(priced[0]) != self.contract_price[slot]:
                    self.contract_price[slot] = float(priced[0])
                    moved.append(slot)
        return self.holders(moved)

    def holders(self, contract_slots: Sequence[int]) -> margin.IntArray:
        """Slots of the accounts holding any of these contracts (sorted, unique)."""
        if not len(contract_slots):
            return NO_ACCOUNTS
        if self._holders is None:
            order = np.argsort(self.position_contract, kind="stable")
            bounds = np.searchsorted(
                self.position_contract[order], np.arange(self.contract_price.size + 1)
            )
            self._holders = (self.position_account[order], bounds)
        accounts, bounds = self._holders
        return np.unique(
            np.concatenate([accounts[bounds[c] : bounds[c + 1]] for c in contract_slots])
        )

    # Evaluation --------------------------------------------------------------

    def evaluate(self, indices: margin.IntArray | None = None, *, at: datetime) -> BookFigures:
        """Evaluate these accounts (all when None) at `at`, in one vectorised pass."""
        days = (self._contract_expiry - at.timestamp()) / SECONDS_PER_DAY
        haircuts = margin.haircut(self.contract_price, days, self._contract_addon, self.params)
        if indices is None:
            index = np.arange(self.n_accounts, dtype=np.int64)
            if self._grouping_all is None:
                # Positions in account order: margin_evaluate's fast path. A full load
                # leaves them so: then no gather at all (views of the book's arrays).
                order = np.argsort(self.position_account, kind="stable")
                in_order = bool((order == np.arange(order.size)).all())
                self._order_all = slice(None) if in_order else order
                self._grouping_all = margin.Grouping.build(
                    self.position_account[self._order_all],
                    self._contract_group[self.position_contract[self._order_all]],
                    self.n_accounts,
                )
            positions, grouping = self._order_all, self._grouping_all
            owner = self.position_account[positions]
        else:
            index = np.unique(np.asarray(indices, dtype=np.int64))
            local = np.full(self.n_accounts, -1, dtype=np.int64)
            local[index] = np.arange(index.size)
            positions = np.flatnonzero(local[self.position_account] >= 0)
            positions = positions[
                np.argsort(local[self.position_account[positions]], kind="stable")
            ]
            owner = local[self.position_account[positions]]
            grouping = margin.Grouping.build(
                owner, self._contract_group[self.position_contract[positions]], int(index.size)
            )
        contract = self.position_contract[positions]
        stale, stale_since = self._stale(owner, contract, size=int(index.size), at=at)
        result = margin.margin_evaluate(
            grouping=grouping,
            quantity=self.quantity[positions],
            # np.take: several times faster than fancy indexing for millions of positions.
            price=np.take(self.contract_price, contract),
            haircut=np.take(haircuts, contract),
            cash=self.cash[index],
            params=self.params,
        )
        return BookFigures(
            index=index,
            account_id=self.account_ids[index],
            custodial=self.custodial[index],
            may_borrow=self.may_borrow[index],
            cash=self.cash[index],
            adjusted_equity=result.adjusted_equity,
            used_margin=result.used_margin,
            available_margin=result.available_margin,
            health=result.health,
            utilization=result.utilization,
            status=result.status,
            stale=stale,
            stale_since=stale_since,
            at=at,
        )

    def _stale(
        self, owner: margin.IntArray, contract: margin.IntArray, *, size: int, at: datetime
    ) -> tuple[BoolArray, margin.FloatArray]:
        """Per account (`owner` of each position, `size` accounts): whether a position
        is priced with a stale price, and the time of the oldest such price. Decided per
        contract first, so a book with no stale price costs one pass over positions."""
        with np.errstate(invalid="ignore"):  # never priced (nan): not stale, worth 0
            stale_contract = self._contract_ages & (
                at.timestamp() - self._contract_quoted_at > self.price_max_age
            )
        stale = np.zeros(size, dtype=bool)
        since = np.full(size, np.nan)
        if stale_contract.any():
            hit = stale_contract[contract]
            stale[owner[hit]] = True
            np.fmin.at(since, owner[hit], self._contract_quoted_at[contract[hit]])
        return stale, since


def _epoch(moment: datetime | None) -> float:
    return np.nan if moment is None else moment.timestamp()
