// Auto-paging over the API's list endpoints (pages of `limit`/`offset` with `next_offset`).
//
//   const page = await client.intelligence.orders.list({ limit: 50 });   // one page
//   for await (const order of client.intelligence.orders.list()) { … }   // every item
//   for await (const page of client.intelligence.orders.list().pages()) { … }

/** What every page of the API has (camelCase). */
export interface PageShape {
  limit: number;
  offset: number;
  nextOffset: number | null;
}

export interface PageParams {
  /** Items per page, 1–500 (the API's default: 100). */
  limit?: number;
  /** Items to skip before the first page (a previous page's `nextOffset`). */
  offset?: number;
}

/** A list call: await it for the first page, iterate it (`for await`) for every item
 * across pages, or `.pages()` for every page. Each page is fetched when needed. */
export class PagedList<Page extends PageShape, Item> implements PromiseLike<Page>, AsyncIterable<Item> {
  private first: Promise<Page> | undefined;

  constructor(
    private readonly fetchPage: (offset: number | undefined) => Promise<Page>,
    private readonly itemsOf: (page: Page) => Item[],
    private readonly startOffset: number | undefined,
  ) {}

  private firstPage(): Promise<Page> {
    if (this.first === undefined) this.first = this.fetchPage(this.startOffset);
    return this.first;
  }

  then<A = Page, B = never>(
    onfulfilled?: ((value: Page) => A | PromiseLike<A>) | null,
    onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.firstPage().then(onfulfilled, onrejected);
  }

  catch<B = never>(onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<Page | B> {
    return this.firstPage().catch(onrejected);
  }

  /** Every page, following `nextOffset` until it is null. */
  async *pages(): AsyncGenerator<Page, void, undefined> {
    let page = await this.firstPage();
    for (;;) {
      yield page;
      if (page.nextOffset === null || page.nextOffset === undefined) return;
      if (this.itemsOf(page).length === 0) return;
      page = await this.fetchPage(page.nextOffset);
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Item, void, undefined> {
    for await (const page of this.pages()) {
      for (const item of this.itemsOf(page)) yield item;
    }
  }

  /** Every item in one array (at most `max`, default 10,000). */
  async toArray(max = 10_000): Promise<Item[]> {
    const out: Item[] = [];
    for await (const item of this) {
      if (out.length >= max) break;
      out.push(item);
    }
    return out;
  }
}
