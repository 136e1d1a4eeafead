# help2man names a page after the program (flasher); a command's page is
# flasher-CMD: fix its .TH title and NAME line.
file(READ ${PAGE} text)
string(TOUPPER "${CMD}" UCMD)
string(REGEX REPLACE "\\.TH FLASHER " ".TH FLASHER-${UCMD} " text "${text}")
string(REGEX REPLACE "\n\\.SH NAME\nflasher \\\\- " "\n.SH NAME\nflasher-${CMD} \\\\- " text "${text}")
file(WRITE ${PAGE} "${text}")
