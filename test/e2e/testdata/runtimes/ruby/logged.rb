# An error rescued and logged with the standard library's Logger.
require 'logger'

log = Logger.new($stdout)
puts 'INFO before crash'
$stdout.flush

def total(order)
  order.fetch(:items).sum
end

begin
  total({})
rescue => e
  log.error(e)
end
