-- POST a book with a unique title and ISBN per request, crediting two authors from a file.
-- Usage: wrk -s post.lua URL -- AUTHORS_FILE NONCE [TOKEN_FILE]
-- (NONCE: 3 digits, unique per wrk run; TOKEN_FILE: a bearer token sent with every request)
local authors = {}
local headers = {["Content-Type"] = "application/json"}
local nonce = "100"
local counter = 0
local next_id = 1

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

function init(args)
  for line in io.lines(args[1]) do
    authors[#authors + 1] = line
  end
  nonce = args[2]
  if args[3] then
    local file = io.open(args[3])
    headers["Authorization"] = "Bearer " .. file:read("*l")
    file:close()
  end
  math.randomseed(id * 104729)
end

local function isbn13(twelve)
  local sum = 0
  for i = 1, 12 do
    local weight = (i % 2 == 1) and 1 or 3
    sum = sum + tonumber(twelve:sub(i, i)) * weight
  end
  return twelve .. tostring((10 - sum % 10) % 10)
end

function request()
  counter = counter + 1
  local first = math.random(#authors)
  local second = first % #authors + 1
  local body = string.format(
    '{"title": "bench-post %s-%d-%d", "author_ids": ["%s", "%s"], "isbn": "%s", ' ..
    '"publication_year": 1987, "language": "en"}',
    nonce, id, counter, authors[first], authors[second],
    isbn13(string.format("979%s%d%05d", nonce, id % 10, counter % 100000)))
  return wrk.format("POST", "/api/v1/books", headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "status_errors": %d, "socket_errors": %d, ' ..
    '"timeouts": %d, "p50_us": %d, "p99_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
